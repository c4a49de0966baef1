#!/bin/sh
# boot: shared
# timeout: 60
#
# At SIGTERM (no --keep) the daemon deletes the discovery controllers it created and nothing else:
# a foreign persistent discovery controller and every I/O controller stay.

SUB=nqn.2024-01.io.example:cleanup
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 1 loop && tgt_link 1 "${SUB}1" &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
foreign=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID")
wait_for 10 ctrl_live "$foreign" || { not_ok "$SCENARIO" "cannot create the foreign discovery controller"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t loop
ours_live() { [ "$(ctrl_count "transport=loop cntrltype=discovery state=live")" -eq 1 ]; }
loop_io() { [ "$(ctrl_count "transport=loop cntrltype=io state=live subsysnqn=${SUB}1 ")" -eq 1 ]; }
if ! wait_for 15 ours_live || ! wait_for 15 loop_io; then
	not_ok "$SCENARIO" "daemon did not set up its loop discovery controller: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
ours=$(ctrl_find "transport=loop cntrltype=discovery")
nio=$(ctrl_count "cntrltype=io")
stop_monitor
gone() { [ ! -e "/sys/class/nvme/$1" ]; }
if [ "$MON_RC" -ne 0 ]; then
	not_ok "$SCENARIO" "exit status $MON_RC"
elif ! wait_for 10 gone "$ours"; then
	not_ok "$SCENARIO" "our discovery controller $ours was not deleted: $(ctrl_list | tr "\n" ";")"
elif ! ctrl_live "$foreign"; then
	not_ok "$SCENARIO" "the foreign discovery controller $foreign was touched: $(ctrl_list | tr "\n" ";")"
elif [ "$(ctrl_count "cntrltype=io")" -ne "$nio" ]; then
	not_ok "$SCENARIO" "I/O controllers changed at exit: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
