#!/bin/sh
# boot: shared
# timeout: 240
#
# Fault matrix: a target port goes away and comes back 20 times while discovery log change AENs
# fire. 16 times a subsystem is unlinked from the port and linked again (two AENs each; nvmet also
# drops that subsystem's controllers, which the host reconnects); 4 times the whole port is removed
# (every subsystem unlinked, the port directory deleted: the listener closes and every controller on
# it, our discovery controller too, goes reconnecting) and recreated. Afterwards every subsystem is
# connected exactly once, our discovery controller is one and in the state file, and SIGTERM leaves
# none of ours and another owner's untouched.

SUB=nqn.2024-01.io.example:flap
SUBS="${SUB}1 ${SUB}2 ${SUB}3 ${SUB}f"
STATE=/run/nvme-monitor/state
fail() { not_ok "$SCENARIO" "$*"; stop_monitor > /dev/null; exit 0; }
settled() { fault_state_complete "$STATE" "$FOREIGN" && fault_subsys_once $SUBS && one_dc; }
one_dc() { [ "$(ctrl_count "cntrltype=discovery state=live .*trsvcid=4420")" -eq 1 ]; }
port_up() {
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" && tgt_link 2 "${SUB}2" && tgt_link 2 "${SUB}3"
}
port_down() {
	tgt_unlink 2 "${SUB}1" && tgt_unlink 2 "${SUB}2" && tgt_unlink 2 "${SUB}3" && rmdir "$NVMET/ports/2"
}

tgt_subsys "${SUB}1" 8M && tgt_subsys "${SUB}2" 8M && tgt_subsys "${SUB}3" 8M && tgt_subsys "${SUB}f" 8M &&
	port_up && tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}f" || fail "cannot set up the target"
FOREIGN=$(fault_foreign_dc 4421)
ctrl_live "$FOREIGN" || fail "no foreign discovery controller"
# Reconnect after 1 s, so that a flap costs seconds, not the kernel's default 10.
start_monitor --persistent --autoconnect --no-config -v -c 1 -t tcp -a 127.0.0.1 -s 4420
wait_for 30 monitor_logged "startup discovery done" || fail "no startup pass"
wait_for 20 settled || fail "before the flaps: $FAULT_WHY"
t0=$(uptime_cs)
i=0
while [ $i -lt 20 ]; do
	i=$((i + 1))
	case $i in
	5 | 10 | 15 | 20)
		port_down || fail "flap $i: cannot remove the port"
		sleep 0.5
		port_up || fail "flap $i: cannot recreate the port"
		;;
	*)
		tgt_unlink 2 "${SUB}2" || fail "flap $i: cannot unlink"
		sleep 0.2
		tgt_link 2 "${SUB}2" || fail "flap $i: cannot link"
		sleep 0.3
		;;
	esac
done
note "20 flaps in $(( ($(uptime_cs) - t0) / 100 )) s; $(grep -c "discovery log genctr" "$MON_LOG") log reads so far"
wait_for 60 settled || fail "after the flaps: $FAULT_WHY"
note "settled $(( ($(uptime_cs) - t0) / 100 )) s after the first flap: $(ctrl_list | tr '\n' ';')"
monitor_running || fail "the daemon died"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC after SIGTERM"
fault_after_exit "$FOREIGN" $SUBS || fail "after SIGTERM: $FAULT_WHY"
ok "$SCENARIO"
