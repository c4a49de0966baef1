#!/bin/sh
# boot: shared
# timeout: 120
#
# SIGKILL instead of an orderly stop, at several points (right after start, i.e. mid-discovery; after
# the startup pass): the next instance adopts every discovery controller that exists, leaks none and
# duplicates none. When the last instance exits without --keep, no discovery controller is left.

SUB=nqn.2024-01.io.example:sigkill
STATE=/run/nvme-monitor
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
kill9() { kill -KILL "$MON_PID"; wait_for 5 proc_gone "$MON_PID"; wait "$MON_PID" 2>/dev/null; MON_PID=; rm -f "$MON_PIDFILE"; }
run() { start_monitor --persistent --autoconnect --keep --no-config -v -t tcp -a 127.0.0.1 -s 4420; }

rm -rf "$STATE"
tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M && tgt_subsys "${SUB}3" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" && tgt_link 2 "${SUB}2" && tgt_link 2 "${SUB}3" ||
	fail "cannot set up the target"
# 1: killed as soon as it listens: the startup discovery is running or about to.
run
wait_for 10 monitor_listening
sleep 0.3
kill9
note "after kill 1: $(ctrl_list | tr '\n' ';')"
# 2: killed after its startup pass.
run
wait_for 20 monitor_logged "startup discovery done" || fail "instance 2 did not finish its startup pass"
kill9
for s in 1 2 3; do io_live "${SUB}$s" || fail "subsystem $s not connected: $(ctrl_list | tr "\n" ";")"; done
[ "$(ctrl_count "cntrltype=discovery")" -eq 1 ] || fail "expected one discovery controller: $(ctrl_list | tr "\n" ";")"
nio=$(ctrl_count "cntrltype=io")
[ "$nio" -eq 3 ] || fail "duplicate I/O controllers: $(ctrl_list | tr "\n" ";")"
# 3: an orderly last instance without --keep adopts and cleans up.
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 20 monitor_logged "startup discovery done" || fail "instance 3 did not finish its startup pass"
monitor_logged "adopted discovery controller" || fail "instance 3 adopted nothing"
[ "$(ctrl_count "cntrltype=discovery")" -eq 1 ] || fail "instance 3 made a duplicate: $(ctrl_list | tr "\n" ";")"
stop_monitor
none_left() { [ "$(ctrl_count "cntrltype=discovery")" -eq 0 ]; }
wait_for 10 none_left || fail "discovery controllers leaked: $(ctrl_list | tr "\n" ";")"
[ "$(ctrl_count "cntrltype=io")" -eq 3 ] || fail "I/O controllers changed: $(ctrl_list | tr "\n" ";")"
ok "$SCENARIO"
