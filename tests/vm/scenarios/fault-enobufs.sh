#!/bin/sh
# boot: shared
# timeout: 120
#
# Fault matrix: the uevent socket overflows. The daemon runs with a 4 KiB receive buffer and is
# stopped (SIGSTOP); a flood of real kernel uevents (`change` written to controllers' uevent files)
# fills its socket, a subsystem is linked to the port meanwhile (its discovery log change AEN is
# among the events that do not fit), more flood, SIGCONT. The daemon must say its socket overflowed,
# rescan sysfs, rediscover and connect the new subsystem; afterwards the state file agrees with
# sysfs, and SIGTERM leaves no discovery controller of ours and another owner's untouched.

SUB=nqn.2024-01.io.example:nobufs
STATE=/run/nvme-monitor/state
fail() { not_ok "$SCENARIO" "$*"; kill -CONT "$MON_PID" 2>/dev/null; stop_monitor > /dev/null; exit 0; }
flood() {
	local i=0 c
	while [ $i -lt "$1" ]; do
		for c in /sys/class/nvme/nvme*; do echo change > "$c/uevent"; done
		i=$((i + 1))
	done
}
settled() { fault_state_complete "$STATE" "$FOREIGN" && fault_subsys_once "$@"; }

tgt_subsys "${SUB}1" 8M && tgt_subsys "${SUB}2" 8M && tgt_subsys "${SUB}f" 8M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}f" || fail "cannot set up the target"
FOREIGN=$(fault_foreign_dc 4421)
ctrl_live "$FOREIGN" || fail "no foreign discovery controller"
start_monitor --persistent --autoconnect --uevent-buffer 4096 --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 30 monitor_logged "startup discovery done" || fail "no startup pass"
wait_for 20 settled "${SUB}1" "${SUB}f" || fail "before the flood: $FAULT_WHY"
kill -STOP "$MON_PID"
t0=$(uptime_cs)
flood 100
tgt_link 2 "${SUB}2"
flood 100
n=$(( $(ls -d /sys/class/nvme/nvme* | wc -l) * 200 ))
note "flood: $n change uevents in $(( ($(uptime_cs) - t0) / 100 )) s, ${SUB}2 linked in the middle"
kill -CONT "$MON_PID"
wait_for 20 monitor_logged "uevent socket overflowed" || fail "no log line about the overflow"
wait_for 30 settled "${SUB}1" "${SUB}2" "${SUB}f" || fail "after SIGCONT: $FAULT_WHY"
grep -m 1 "overflowed" "$MON_LOG" | sed 's/^/# log: /'
grep -m 1 "connected ${SUB}2 " "$MON_LOG" | sed 's/^/# log: /'
note "$(grep -c "uevent socket overflowed" "$MON_LOG") overflow(s) logged"
monitor_running || fail "the daemon died"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC after SIGTERM"
fault_after_exit "$FOREIGN" "${SUB}1" "${SUB}2" "${SUB}f" || fail "after SIGTERM: $FAULT_WHY"
ok "$SCENARIO"
