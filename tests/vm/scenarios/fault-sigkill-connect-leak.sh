#!/bin/sh
# boot: shared
# timeout: 240
#
# Fault matrix: a SIGKILL after the kernel made a new persistent discovery controller and before
# the daemon wrote it to the state file (found by fault-sigkill-points, kill 5 of its run 3, which
# leaked that controller for good before the fix: the next instance took it as foreign). The
# daemon now writes a `creating` line (the address and the highest controller identity sysfs
# shows) just before the connect; the next instance adopts the first discovery controller at that
# address with a greater identity. Made reproducible here: SIGSTOP as the connect begins, retried
# until the stopped daemon is caught with the controller in sysfs and not yet in the state file as
# a `dc` line; then SIGKILL, a restart, SIGTERM. Expected: no discovery controller left.

SUB=nqn.2024-01.io.example:leak
STATE=/run/nvme-monitor/state
ARGS="--persistent --no-config -v -t tcp -a 127.0.0.1 -s 4420"
fail() { not_ok "$SCENARIO" "$*"; kill -CONT "$MON_PID" 2>/dev/null; stop_monitor > /dev/null; exit 0; }
stopped() { grep -q '^[0-9]* (.*) T ' "/proc/$MON_PID/stat" 2>/dev/null; }
dc_here() { ctrl_find "cntrltype=discovery .*trsvcid=4420"; }
wait_tight() {
	local end=$(( $(uptime_cs) + $1 * 100 )) n=0
	until grep -qE -- "$2" "$MON_LOG"; do
		n=$((n + 1))
		[ $((n % 20)) -ne 0 ] || [ "$(uptime_cs)" -lt "$end" ] || return 1
	done
}
clean_up_dc() {
	local c
	c=$(dc_here)
	[ -z "$c" ] || echo 1 > "/sys/class/nvme/$c/delete_controller"
	wait_for 10 no_ctrls
	rm -rf /run/nvme-monitor
}

tgt_subsys "${SUB}1" 8M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"
try=0 caught=
while [ $try -lt 25 ] && [ -z "$caught" ]; do
	try=$((try + 1))
	start_monitor $ARGS
	wait_tight 20 "discovery 1 at .*4420" || fail "try $try: no discovery"
	# A few ms into it: the write to /dev/nvme-fabrics and what follows it.
	i=0; while [ $i -lt $((try % 5)) ]; do i=$((i + 1)); : ; done
	kill -STOP "$MON_PID"
	wait_for 5 stopped || fail "try $try: the daemon did not stop"
	c=$(dc_here)
	if [ -n "$c" ] && ! grep -q "^dc $c " "$STATE" 2>/dev/null; then
		caught=$c
		note "try $try: stopped with $c in sysfs and not in the state file ($(grep -c . "$MON_LOG") log lines)"
		fault_kill9
		break
	fi
	kill -CONT "$MON_PID"
	stop_monitor
	clean_up_dc
done
[ -n "$caught" ] || fail "the window was not caught in $try tries: this run proves nothing"
start_monitor $ARGS
wait_for 30 monitor_logged "startup discovery done" || fail "restart: no startup pass"
grep -E "found discovery controller|adopted|created" "$MON_LOG" | sed 's/^/# restart: /'
stop_monitor
if [ -n "$(dc_here)" ]; then
	fail "after the restart's SIGTERM, $(dc_here) (made by the killed instance) is still there: leaked"
fi
ok "$SCENARIO"
