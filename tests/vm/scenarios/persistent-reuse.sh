#!/bin/sh
# boot: shared
# timeout: 60
#
# A persistent discovery controller created before the daemon starts (as `nvme discover -p` would) is
# found at startup and used: its log is read, the subsystem connected, no second discovery controller
# made, and it is still there after our exit (it is not ours to delete).

SUB=nqn.2024-01.io.example:reuse
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
pdc=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID")
wait_for 10 ctrl_live "$pdc" || { not_ok "$SCENARIO" "cannot create the discovery controller"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
if ! wait_for 15 io_live "${SUB}1"; then
	not_ok "$SCENARIO" "subsystem not connected: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
ndc=$(ctrl_count "cntrltype=discovery")
stop_monitor
if [ "$ndc" -ne 1 ]; then
	not_ok "$SCENARIO" "$ndc discovery controllers while running, expected only $pdc"
elif ! ctrl_live "$pdc"; then
	not_ok "$SCENARIO" "$pdc did not survive our exit: $(ctrl_list | tr "\n" ";")"
elif ! monitor_logged "using existing discovery controller $pdc|found discovery controller $pdc"; then
	not_ok "$SCENARIO" "no log line says $pdc was reused"
else
	ok "$SCENARIO"
fi
