#!/bin/sh
# boot: own
# cmdline: rd.nvmf.discover=tcp,127.0.0.1,,4420 rd.nvmf.hostnqn=nqn.2014-08.org.nvmexpress:uuid:0f01fb42-9f7f-4856-b0b3-51e60b8de349
# timeout: 60
#
# dracut's kernel parameters drive discovery: with --cmdline and no configuration at all, the
# rd.nvmf.discover= address on the VM's kernel command line is discovered and its subsystem connected.

SUB=nqn.2024-01.io.example:cmdline
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --once --autoconnect --cmdline --no-config -v
wait_for 30 proc_gone "$MON_PID"
stop_monitor
if [ "$MON_RC" -ne 0 ]; then
	not_ok "$SCENARIO" "exit status $MON_RC"
elif ! io_live "${SUB}1"; then
	not_ok "$SCENARIO" "not connected from rd.nvmf.discover: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
