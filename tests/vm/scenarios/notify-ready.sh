#!/bin/sh
# boot: shared
# timeout: 60
#
# A NOTIFY_SOCKET listener receives READY=1 after the startup discovery pass (the subsystem is already
# connected by then), and <state-dir>/ready exists for scripts without a service manager.

SUB=nqn.2024-01.io.example:notify
SOCK=$VM_STATE/notify.sock
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
notify-listen "$SOCK" 30 > "$VM_STATE/notify.out" &
lpid=$!
sock_there() { [ -S "$SOCK" ]; }
wait_for 5 sock_there
export NOTIFY_SOCKET="$SOCK"
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
unset NOTIFY_SOCKET
wait "$lpid"
lrc=$?
connected_at_ready=no
io_live "${SUB}1" && connected_at_ready=yes
if [ "$lrc" -ne 0 ]; then
	not_ok "$SCENARIO" "no READY=1 within 30 s (got: $(tr '\n' ' ' < "$VM_STATE/notify.out"))"
elif [ "$connected_at_ready" != yes ]; then
	not_ok "$SCENARIO" "READY=1 came before the startup pass connected the subsystem"
elif [ ! -s /run/nvme-monitor/ready ]; then
	not_ok "$SCENARIO" "no /run/nvme-monitor/ready"
else
	ok "$SCENARIO"
fi
stop_monitor
