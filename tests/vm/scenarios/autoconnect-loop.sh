#!/bin/sh
# boot: shared
# timeout: 60
#
# `nvme-monitor --once --autoconnect -t loop` connects every subsystem of a loop port, deletes the
# temporary discovery controller it made, and exits 0.

SUB=nqn.2024-01.io.example:auto-loop
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB")" -eq "$1" ]; }

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M && tgt_port 1 loop &&
	tgt_link 1 "${SUB}1" && tgt_link 1 "${SUB}2" || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }

start_monitor --once --autoconnect --no-config -v -t loop
wait_for 30 proc_gone "$MON_PID"
stop_monitor
rc=$MON_RC
if [ "$rc" -ne 0 ]; then
	not_ok "$SCENARIO" "exit status $rc, expected 0"
elif ! wait_for 10 io_live 2; then
	not_ok "$SCENARIO" "expected 2 live loop I/O controllers: $(ctrl_list | tr "\n" ";")"
elif [ "$(ctrl_count "cntrltype=discovery")" -ne 0 ]; then
	not_ok "$SCENARIO" "temporary discovery controller left behind: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
