#!/bin/sh
# boot: shared
# timeout: 420
#
# Fault matrix: the hostile discovery logs nvmet can produce. 50 TCP discovery ports (4430-4479,
# each with one small subsystem linked so nvmet enables it) form a referral loop: port i refers to
# port i+1, the last to the first. One port also offers a subsystem whose NQN carries option text
# (`...:evil,hostnqn=...`) and a referral whose traddr does (`127.0.0.1,hostnqn=...`); a background
# loop links and unlinks a subsystem on the first port as fast as configfs allows, so its genctr
# changes under the reads.
#  1. --once from the first port: it ends, every port is discovered exactly once (bounded work:
#     the loop is followed round once), the hostile entries are refused with lines naming the field
#     and the value, and no controller is left.
#  2. --persistent: 50 discovery controllers, one per port, 50 slots tracked (no junk from the
#     hostile entries, no "table full"), the state file agrees with sysfs; another owner's
#     controller at one port is used, not duplicated; SIGTERM deletes ours and leaves theirs.
# Not made here: numrec far above the page (nvmet always sends a true numrec), other string fields
# (nvmet fills them itself); the unit tests of src/discovery_log.rs and the discovery_log fuzz
# target cover those.

SUB=nqn.2024-01.io.example:loop
EVIL="nqn.2024-01.io.example:evil,hostnqn=nqn.2024-01.io.example:intruder"
STATE=/run/nvme-monitor/state
N=50 FIRST=4430
fail() { not_ok "$SCENARIO" "$*"; churn_stop; stop_monitor > /dev/null; exit 0; }
churn_stop() {
	touch "$VM_STATE/churn.stop"
	[ -z "${CHURN:-}" ] || wait "$CHURN" 2>/dev/null
	CHURN=
	[ ! -L "$NVMET/ports/30/subsystems/${SUB}churn" ] || tgt_unlink 30 "${SUB}churn"
	rm -f "$VM_STATE/churn.stop"
}
reads_at() { grep -cE "debug: discovery [0-9]+ at tcp traddr=127.0.0.1,trsvcid=$1\$" "$MON_LOG"; }
dcs_ours() { [ "$(ctrl_count "cntrltype=discovery state=live")" -eq "$N" ]; }

t0=$(uptime_cs)
tgt_subsys "${SUB}1" 4M && tgt_subsys "${SUB}churn" 4M || fail "cannot make the subsystems"
i=0
while [ $i -lt $N ]; do
	p=$((30 + i)) s=$((FIRST + i)) next=$((FIRST + (i + 1) % N))
	tgt_port $p tcp 127.0.0.1 $s && tgt_link $p "${SUB}1" &&
		tgt_referral $p next tcp 127.0.0.1 $next || fail "cannot set up port $s"
	i=$((i + 1))
done
tgt_subsys "$EVIL" 4M 2>/dev/null && tgt_link 55 "$EVIL" 2>/dev/null ||
	fail "nvmet refused the subsystem name '$EVIL': cannot put it in a log page"
tgt_referral 55 evil tcp "127.0.0.1,hostnqn=nqn.2024-01.io.example:intruder" 4420 2>/dev/null ||
	note "nvmet refused the hostile referral traddr: only the subsystem NQN is hostile"
note "target: $N ports set up in $(( ($(uptime_cs) - t0) / 100 )) s"

# 1. --once, with the genctr of the first port churning.
rm -f "$VM_STATE/churn.stop"
(
	while [ ! -e "$VM_STATE/churn.stop" ]; do
		tgt_link 30 "${SUB}churn" 2>/dev/null
		tgt_unlink 30 "${SUB}churn" 2>/dev/null
	done
) &
CHURN=$!
t1=$(uptime_cs)
start_monitor --once --no-config -v -t tcp -a 127.0.0.1 -s $FIRST
wait_for 300 proc_gone "$MON_PID" || fail "--once did not end within 300 s"
stop_monitor
took=$(( ($(uptime_cs) - t1) / 100 ))
churn_stop
note "--once: exit status $MON_RC after $took s; $(grep -c "discovery log genctr" "$MON_LOG") log reads; $(grep -c "genctr changed\|changed while" "$MON_LOG") genctr retries logged"
grep -m 2 "changed while reading" "$MON_LOG" | sed 's/^/# log: /'
grep -m 4 "refused" "$MON_LOG" | cut -c1-300 | sed 's/^/# log: /'
note "$(grep -c "try 5/5\|no consistent\|gave up" "$MON_LOG") reads that gave up on the genctr"
[ "$MON_RC" -eq 0 ] || [ "$MON_RC" -eq 3 ] || fail "--once exit status $MON_RC"
# nvmet's genctr is one counter for every port, so the churn can make any port's log change
# during each of its reads: that read gives up with a clear error, --once exits 3 without
# retrying it, and the ports the chain reaches only through it are not discovered. Bounded work
# still means: every port up to it once, none after it, nothing twice.
gaveup=$(sed -n 's/.*error: discovery at tcp traddr=127.0.0.1,trsvcid=\([0-9]*\) (nvme[0-9]*): unable to read a consistent discovery log.*/\1/p' "$MON_LOG" | head -n 1)
if [ -n "$gaveup" ]; then
	note "the log of $gaveup changed during each of its reads: the chain ends there"
	[ "$MON_RC" -eq 3 ] || fail "a read gave up at $gaveup, but --once exited $MON_RC, not 3"
fi
i=0 bad=
while [ $i -lt $N ]; do
	pt=$((FIRST + i))
	want=1
	[ -n "$gaveup" ] && [ "$pt" -gt "$gaveup" ] && want=0
	r=$(reads_at $pt)
	[ "$r" -eq "$want" ] || bad="$bad $pt:$r(want $want)"
	i=$((i + 1))
done
[ -z "$bad" ] || fail "ports not discovered exactly as often as the chain allows (port:runs):$bad"
# hostile_refused: the hostile entries of port 55 (4455) were refused, each with a line naming it.
hostile_refused() {
	monitor_logged "refused .*subnqn.*evil" || fail "no log line refusing the hostile subsystem and naming it"
	if [ -d "$NVMET/ports/55/referrals/evil" ]; then
		monitor_logged "refused .*traddr.*hostnqn" || fail "no log line refusing the hostile referral traddr"
	fi
}
# The chain may end at or before 4455 (its log is the longest, so the churn hits it most): then
# its entries were never read here, and the churn-free --persistent pass below checks them.
if [ -z "$gaveup" ] || [ "$gaveup" -gt 4455 ]; then
	hostile_refused
	hostile_later=
else
	note "the chain ended before 4455 was read: its hostile entries are checked in the --persistent pass"
	hostile_later=1
fi
ctrl_list | grep -q "intruder\|evil" && fail "a hostile entry was connected: $(ctrl_list | tr '\n' ';')"
[ "$(ctrl_count)" -eq 0 ] || fail "--once left controllers: $(ctrl_list | tr '\n' ';')"

# 2. --persistent: one discovery controller per port, theirs at the last port.
FOREIGN=$(fault_foreign_dc $((FIRST + N - 1)))
ctrl_live "$FOREIGN" || fail "no foreign discovery controller"
t1=$(uptime_cs)
start_monitor --persistent --no-config -v -t tcp -a 127.0.0.1 -s $FIRST
wait_for 300 monitor_logged "startup discovery done" || fail "no startup pass in 300 s"
wait_for 120 dcs_ours || fail "$(ctrl_count cntrltype=discovery) discovery controllers, expected $N"
note "--persistent: $N discovery controllers after $(( ($(uptime_cs) - t1) / 100 )) s; $(grep -o "startup discovery done.*" "$MON_LOG")"
wait_for 30 fault_state_complete "$STATE" "$FOREIGN" || fail "$FAULT_WHY"
[ "$(grep -c '^dc ' "$STATE")" -eq $((N - 1)) ] || fail "state file lists $(grep -c '^dc ' "$STATE"), expected $((N - 1))"
tracked=$(grep -o "startup discovery done: [0-9]*" "$MON_LOG" | grep -o "[0-9]*$")
[ "${tracked:-0}" -le $((N + 1)) ] || fail "$tracked addresses tracked for $N ports: junk in the table"
monitor_logged "table full" && fail "the connection table filled up"
i=0 bad=
while [ $i -lt $N ]; do
	r=$(reads_at $((FIRST + i)))
	[ "$r" -le 2 ] || bad="$bad $((FIRST + i)):$r"
	i=$((i + 1))
done
[ -z "$bad" ] || fail "ports discovered more than twice in the startup pass (port:runs):$bad"
[ -z "$hostile_later" ] || hostile_refused
ctrl_list | grep -q "intruder\|evil" && fail "a hostile entry was connected: $(ctrl_list | tr '\n' ';')"
t1=$(uptime_cs)
stop_monitor
note "SIGTERM: exit after $(( ($(uptime_cs) - t1) / 10 ))00 ms, status $MON_RC"
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC after SIGTERM"
fault_after_exit "$FOREIGN" || fail "after SIGTERM: $FAULT_WHY"
ok "$SCENARIO"
