#!/bin/sh
# boot: shared
# timeout: 60
#
# nvmet port referrals: port 4420 refers to port 4421 and 4421 back to 4420. The daemon follows the
# referral from its main loop, connects the subsystems behind both ports, and the loop ends: --once
# exits 0 with each port discovered once.

SUB=nqn.2024-01.io.example:ref
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}2" &&
	tgt_referral 2 to3 tcp 127.0.0.1 4421 && tgt_referral 3 to2 tcp 127.0.0.1 4420 ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --once --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 30 proc_gone "$MON_PID"
stop_monitor
runs=$(grep -cE "debug: discovery [0-9]+ at" "$MON_LOG")
if [ "$MON_RC" -ne 0 ]; then
	not_ok "$SCENARIO" "exit status $MON_RC"
elif ! io_live "${SUB}1" || ! io_live "${SUB}2"; then
	not_ok "$SCENARIO" "expected both subsystems connected: $(ctrl_list | tr "\n" ";")"
elif [ "$runs" -ne 2 ]; then
	not_ok "$SCENARIO" "$runs discovery runs, expected 2 (one per port)"
else
	ok "$SCENARIO"
fi
