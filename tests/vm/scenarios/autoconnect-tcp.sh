#!/bin/sh
# boot: shared
# timeout: 60
#
# Over TCP, from discovery.conf: `--once --autoconnect` connects all three subsystems of the port
# (I/O verified with a write and read back through the namespace), then a second run finds them
# all connected and connects nothing twice.

SUB=nqn.2024-01.io.example:auto-tcp
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB")" -eq "$1" ]; }

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M && tgt_subsys "${SUB}3" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" && tgt_link 2 "${SUB}2" && tgt_link 2 "${SUB}3" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
conf=$VM_STATE/discovery.conf
printf '# test\n--transport=tcp --traddr=127.0.0.1 --trsvcid=4420\n' > "$conf"

start_monitor --once --autoconnect -v -C "$conf"
wait_for 30 proc_gone "$MON_PID"
stop_monitor
rc1=$MON_RC
wait_for 10 io_live 3
n1=$(ctrl_count "cntrltype=io")
start_monitor --once --autoconnect -v -C "$conf"
wait_for 30 proc_gone "$MON_PID"
stop_monitor
rc2=$MON_RC
n2=$(ctrl_count "cntrltype=io")

io_ok=no
ns=$(ls /dev/nvme*n1 2>/dev/null | head -n 1)
if [ -n "$ns" ]; then
	dd if=/dev/urandom of=$VM_STATE/pat bs=4096 count=1 2>/dev/null
	dd if=$VM_STATE/pat of="$ns" bs=4096 count=1 oflag=direct 2>/dev/null &&
		dd if="$ns" bs=4096 count=1 iflag=direct 2>/dev/null | cmp -s - $VM_STATE/pat && io_ok=yes
fi
if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then
	not_ok "$SCENARIO" "exit status $rc1 / $rc2, expected 0"
elif [ "$n1" -ne 3 ] || [ "$n2" -ne 3 ]; then
	not_ok "$SCENARIO" "I/O controllers after run 1: $n1, after run 2: $n2, expected 3 and 3: $(ctrl_list | tr "\n" ";")"
elif [ "$io_ok" != yes ]; then
	not_ok "$SCENARIO" "write and read back through $ns failed"
elif [ "$(ctrl_count "cntrltype=discovery")" -ne 0 ]; then
	not_ok "$SCENARIO" "temporary discovery controller left behind: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
