#!/bin/sh
# boot: shared
# timeout: 60
#
# A subsystem whose NQN carries option text (`,hostnqn=...`) appears in the discovery log: the daemon
# refuses that entry with a log line naming the field, and still connects the other subsystems.
# (nvmet accepts such a name on 6.12; if it ever refuses, the scenario says so and the unit tests over
# crafted log pages carry the proof.)

SUB=nqn.2024-01.io.example:hostile
EVIL="nqn.2024-01.io.example:evil,hostnqn=nqn.2024-01.io.example:intruder"
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
if ! tgt_subsys "$EVIL" 16M 2>/dev/null || ! tgt_link 2 "$EVIL" 2>/dev/null; then
	not_ok "$SCENARIO" "nvmet refused the subsystem name '$EVIL': cannot put it in a log page"
	exit 0
fi
start_monitor --once --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 30 proc_gone "$MON_PID"
stop_monitor
if ! io_live "${SUB}1"; then
	not_ok "$SCENARIO" "the good subsystem was not connected: $(ctrl_list | tr "\n" ";")"
elif ctrl_list | grep -q "intruder\|evil"; then
	not_ok "$SCENARIO" "the hostile entry was connected: $(ctrl_list | tr "\n" ";")"
elif ! monitor_logged "refused .*subnqn"; then
	not_ok "$SCENARIO" "no log line refusing the entry and naming subnqn"
else
	ok "$SCENARIO"
fi
