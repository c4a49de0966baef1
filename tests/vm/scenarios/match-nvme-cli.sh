#!/bin/sh
# boot: shared
# timeout: 90
#
# Against the same target in the same boot, `nvme-monitor --once --autoconnect` connects exactly the
# set of subsystems (and addresses) that `nvme connect-all` connects.

SUB=nqn.2024-01.io.example:match
tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M && tgt_subsys "${SUB}3" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" && tgt_link 2 "${SUB}2" &&
	tgt_port 4 tcp 127.0.0.1 4422 && tgt_link 4 "${SUB}3" && tgt_referral 2 to4 tcp 127.0.0.1 4422 ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
# subsysnqn and transport address (without src_addr, which the kernel picks) of each I/O controller.
io_set() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/cntrltype" 2>/dev/null)" = io ] || continue
		echo "$(cat "$c/subsysnqn") $(cat "$c/transport") $(sed 's/,src_addr=[^,]*//' "$c/address")"
	done | sort
}
start_monitor --once --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 30 proc_gone "$MON_PID"
stop_monitor
ours=$(io_set)
wait_for 20 delete_all_ctrls
nvme connect-all -t tcp -a 127.0.0.1 -s 4420 > /dev/null 2>&1
sleep 1
theirs=$(io_set)
note "nvme-monitor: $(echo "$ours" | tr '\n' ';')"
note "nvme-cli:     $(echo "$theirs" | tr '\n' ';')"
if [ -z "$ours" ]; then
	not_ok "$SCENARIO" "nvme-monitor connected nothing (exit status $MON_RC)"
elif [ "$ours" != "$theirs" ]; then
	not_ok "$SCENARIO" "sets differ: ours [$(echo "$ours" | tr '\n' ';')] nvme-cli [$(echo "$theirs" | tr '\n' ';')]"
else
	ok "$SCENARIO"
fi
