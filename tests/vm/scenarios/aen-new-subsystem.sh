#!/bin/sh
# boot: shared
# timeout: 60
#
# A persistent discovery controller's AEN: a subsystem linked to its port later is connected within
# 5 s by the same daemon process, with no restart.

SUB=nqn.2024-01.io.example:aen-new
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 io_live "${SUB}1" || { not_ok "$SCENARIO" "first subsystem not connected: $(ctrl_list | tr "\n" ";")"; exit 0; }
pid=$MON_PID
tgt_subsys "${SUB}2" 16M && tgt_link 2 "${SUB}2"
if ! wait_for 5 io_live "${SUB}2"; then
	not_ok "$SCENARIO" "new subsystem not connected within 5 s: $(ctrl_list | tr "\n" ";")"
elif ! monitor_running || [ "$MON_PID" != "$pid" ]; then
	not_ok "$SCENARIO" "daemon is not the same process"
elif ! monitor_logged "event: aen "; then
	not_ok "$SCENARIO" "connected, but no AEN was logged"
else
	ok "$SCENARIO"
fi
stop_monitor
