#!/bin/sh
# boot: shared
# timeout: 120
#
# Fault matrix: a target that accepts TCP and never answers (a listener fed from a FIFO nobody
# writes: the kernel waits for its ICResp, ~10 s, then fails the connect), configured first, next
# to a healthy address. The healthy one is served (after the kernel's timeout at worst); SIGTERM,
# sent while a retry of the wedged address is in its connect, is answered within 2 s; nothing is
# left behind (no controller at the wedged address, none of ours, another owner's untouched).

SUB=nqn.2024-01.io.example:wedged
WEDGED=8010
CONF=$VM_STATE/wedged.conf
FIFO=$VM_STATE/wedged.fifo
NCPID=$VM_STATE/wedged.ncpid
fail() { not_ok "$SCENARIO" "$*"; stop_monitor > /dev/null; wedge_down; exit 0; }
attempts() { grep -cE "debug: discovery [0-9]+ at tcp traddr=127.0.0.1,trsvcid=$WEDGED" "$MON_LOG"; }
more_attempts() { [ "$(attempts)" -gt "$1" ]; }
# A listener per connection (busybox nc serves one), restarted until wedge_down.
wedge_up() {
	rm -f "$FIFO" && mkfifo "$FIFO" && exec 4<> "$FIFO"
	(
		while [ ! -e "$VM_STATE/wedged.stop" ]; do
			nc -l -p "$WEDGED" < "$FIFO" > /dev/null 2>&1 &
			echo $! > "$NCPID"
			wait $!
		done
	) &
	WEDGE_LOOP=$!
}
wedge_down() {
	touch "$VM_STATE/wedged.stop"
	kill "$WEDGE_LOOP" 2>/dev/null
	[ ! -s "$NCPID" ] || kill "$(cat "$NCPID")" 2>/dev/null
	wait "$WEDGE_LOOP" 2>/dev/null
	exec 4>&-
	rm -f "$FIFO" "$NCPID" "$VM_STATE/wedged.stop"
}
listening() { netstat -ltn 2>/dev/null | grep -q ":$WEDGED "; }

tgt_subsys "${SUB}1" 8M && tgt_subsys "${SUB}f" 8M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}f" || fail "cannot set up the target"
FOREIGN=$(fault_foreign_dc 4421)
ctrl_live "$FOREIGN" || fail "no foreign discovery controller"
rm -f "$VM_STATE/wedged.stop"
wedge_up
wait_for 5 listening || note "netstat does not show the listener (going on)"
printf '%s\n' "--transport=tcp --traddr=127.0.0.1 --trsvcid=$WEDGED" \
	"--transport=tcp --traddr=127.0.0.1 --trsvcid=4420" > "$CONF"
t0=$(uptime_cs)
start_monitor --persistent --autoconnect -v -C "$CONF"
wait_for 40 fault_subsys_once "${SUB}1" || fail "the healthy address was not served: $FAULT_WHY"
note "healthy subsystem connected $(( ($(uptime_cs) - t0) / 10 ))00 ms after the start"
wait_for 20 fault_subsys_once "${SUB}1" "${SUB}f" || fail "$FAULT_WHY"
n=$(attempts)
wait_for 30 more_attempts "$n" || fail "no retry of the wedged address after attempt $n"
sleep 0.5
note "wedged address: $(attempts) attempt(s); SIGTERM inside the last one"
t1=$(uptime_cs)
kill -TERM "$MON_PID"
wait_for 10 proc_gone "$MON_PID"
took=$(( $(uptime_cs) - t1 ))
stop_monitor
note "exited $took cs after SIGTERM (status $MON_RC)"
grep -m 2 -E "error: discovery at tcp traddr=127.0.0.1,trsvcid=$WEDGED" "$MON_LOG" | sed 's/^/# log: /'
wedge_down
[ "$took" -le 200 ] || fail "took $took cs to exit after SIGTERM (limit 200)"
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC after SIGTERM"
[ "$(ctrl_count "trsvcid=$WEDGED")" -eq 0 ] || fail "a controller at the wedged address: $(ctrl_list | tr '\n' ';')"
fault_after_exit "$FOREIGN" "${SUB}1" "${SUB}f" || fail "after SIGTERM: $FAULT_WHY"
[ ! -e /run/nvme-monitor/state ] || fail "state file left after SIGTERM"
ok "$SCENARIO"
