#!/bin/sh
# boot: shared
# default: no
# timeout: 700
#
# make bench: idle footprint of `nvme-monitor --persistent` with 0, 1, 8 and 64 persistent
# discovery controllers (nvmet TCP ports on 127.0.0.1:4420.., named in a discovery.conf), the time
# from its start to its ready file (the startup pass done: every DC connected and its log read;
# 10 ms steps of /proc/uptime), and what 30 s of idling with 8 of them costs (context switches and
# CPU ticks from /proc/PID). Reference for the startup: `nvme discover` of one of the ports, 5
# runs. Then the edges: 128 ports, the first one's discovery log 1024 entries (the discovery
# subsystem's own entry, which nvmet adds, its subsystem and 1022 referrals naming the other 127
# ports over and over, the last one an address with no listener: the 129th address, which the
# full table must refuse with a log line); VmHWM and
# VmRSS of `--persistent` once its startup pass is done, beside `nvme discover`'s ru_maxrss for
# the same log. Prints "# bench ..." lines for bench/report; fails only when the setup does.

fail() {
	not_ok "$SCENARIO" "$*"
	stop_monitor > /dev/null
	exit 0
}
conf=$VM_STATE/bench-discovery.conf
ready=/run/nvme-monitor/ready
dcs_live() { [ "$(ctrl_count "cntrltype=discovery state=live")" -eq "$1" ]; }
# status_of PID KEY: a field of /proc/PID/status without its unit.
status_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# ticks_of PID: utime + stime from /proc/PID/stat (fields 14 and 15; the name has no spaces here).
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# nvmet listens on a port only once a subsystem is linked to it: one subsystem on all of them.
tgt_subsys nqn.2024-01.io.example:bench-idle 16M || fail "cannot create the subsystem"
i=1
while [ $i -le 64 ]; do
	tgt_port "$i" tcp 127.0.0.1 $((4419 + i)) && tgt_link "$i" nqn.2024-01.io.example:bench-idle ||
		fail "cannot create port $i"
	i=$((i + 1))
done
r=1
while [ $r -le 5 ]; do
	echo "# bench discover_one nvme-cli $r $(bench-rusage nvme discover -t tcp -a 127.0.0.1 -s 4420)"
	r=$((r + 1))
done
for n in 0 1 8 64; do
	: > "$conf"
	i=1
	while [ $i -le $n ]; do
		echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=$((4419 + i))" >> "$conf"
		i=$((i + 1))
	done
	rm -f "$ready"
	t0=$(uptime_cs)
	start_monitor --persistent -C "$conf"
	until [ -e "$ready" ]; do
		[ $(($(uptime_cs) - t0)) -lt 20000 ] || fail "$n DCs: daemon not ready after 200 s"
		sleep 0.01
	done
	echo "# bench ready $n ms=$((($(uptime_cs) - t0) * 10))"
	wait_for 60 dcs_live "$n" || fail "$n DCs: $(ctrl_count cntrltype=discovery) discovery controllers"
	sleep 2
	pid=$MON_PID
	echo "# bench idle_rss $n hwm_kb=$(status_of "$pid" VmHWM) rss_kb=$(status_of "$pid" VmRSS)"
	if [ "$n" -eq 8 ]; then
		v0=$(status_of "$pid" voluntary_ctxt_switches)
		nv0=$(status_of "$pid" nonvoluntary_ctxt_switches)
		t0=$(ticks_of "$pid")
		sleep 30
		v1=$(status_of "$pid" voluntary_ctxt_switches)
		nv1=$(status_of "$pid" nonvoluntary_ctxt_switches)
		t1=$(ticks_of "$pid")
		echo "# bench idle_30s 8 voluntary=$((v1 - v0)) nonvoluntary=$((nv1 - nv0)) ticks=$((t1 - t0))"
	fi
	stop_monitor > /dev/null
	wait_for 30 no_ctrls || fail "$n DCs: controllers left after exit: $(ctrl_list | tr '\n' ';')"
done

# The edges: the table full (128 addresses) and a 1024-entry discovery log.
i=65
while [ $i -le 128 ]; do
	tgt_port "$i" tcp 127.0.0.1 $((4419 + i)) && tgt_link "$i" nqn.2024-01.io.example:bench-idle ||
		fail "cannot create port $i"
	i=$((i + 1))
done
r=1
while [ $r -le 1021 ]; do
	tgt_referral 1 "r$r" tcp 127.0.0.1 $((4421 + (r - 1) % 127)) || fail "cannot create referral $r"
	r=$((r + 1))
done
tgt_referral 1 r1022 tcp 127.0.0.1 4548 || fail "cannot create referral 1022"
echo "# bench edge_ref nvme-cli $(bench-rusage nvme discover -t tcp -a 127.0.0.1 -s 4420)"
rm -f "$ready"
t0=$(uptime_cs)
# --keep: deleting 128 controllers one by one at SIGTERM takes longer than stop_monitor waits
# under TCG; they are deleted in parallel below.
start_monitor --persistent --keep --no-config -t tcp -a 127.0.0.1 -s 4420
until [ -e "$ready" ]; do
	[ $(($(uptime_cs) - t0)) -lt 40000 ] || fail "edges: daemon not ready after 400 s"
	sleep 0.1
done
ms=$((($(uptime_cs) - t0) * 10))
sleep 5
pid=$MON_PID
full=$(grep -c "connection table full" "$MON_LOG" || true)
cut=$(grep -c "reading only the first" "$MON_LOG" || true)
echo "# bench edge ours hwm_kb=$(status_of "$pid" VmHWM) rss_kb=$(status_of "$pid" VmRSS)" \
	"dcs=$(ctrl_count "cntrltype=discovery state=live") table_full_lines=$full cut=$cut ready_ms=$ms"
stop_monitor > /dev/null
[ "$MON_RC" = 0 ] || fail "edges: daemon exit status $MON_RC"
wait_for 120 delete_parallel || fail "edges: controllers left: $(ctrl_count)"
[ "$full" -ge 1 ] || fail "edges: the 129th address was not refused with a table-full line"
ok "$SCENARIO"
