#!/bin/sh
# boot: shared
# timeout: 60
#
# Resetting the persistent discovery controller makes the kernel send NVME_EVENT=rediscover: the
# daemon re-reads that controller's log (a new discovery run, a subsystem linked meanwhile gets
# connected) and keeps using the same controller instead of creating another.

SUB=nqn.2024-01.io.example:redisc
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
runs() { grep -cE "debug: discovery [0-9]+ at" "$MON_LOG"; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 io_live "${SUB}1" || { not_ok "$SCENARIO" "first subsystem not connected: $(ctrl_list | tr "\n" ";")"; exit 0; }
dc=$(ctrl_find "cntrltype=discovery state=live")
before=$(runs)
echo 1 > "/sys/class/nvme/$dc/reset_controller"
more_runs() { [ "$(runs)" -gt "$before" ]; }
if ! wait_for 10 monitor_logged "event: rediscover $dc"; then
	not_ok "$SCENARIO" "no rediscover event logged for $dc"
elif ! wait_for 10 more_runs; then
	not_ok "$SCENARIO" "rediscover did not re-run discovery"
elif [ "$(ctrl_count "cntrltype=discovery")" -ne 1 ] || ! ctrl_live "$dc"; then
	not_ok "$SCENARIO" "expected the one discovery controller $dc, live: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
stop_monitor
