#!/bin/sh
# boot: shared
# timeout: 60
#
# The state directory cannot be written (a read-only mount): a clear error naming the path, and the
# daemon still discovers and connects.

SUB=nqn.2024-01.io.example:ro
RO=$VM_STATE/ro
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
mkdir -p "$RO" && mount -t tmpfs -o ro tmpfs "$RO" || { not_ok "$SCENARIO" "cannot mount a read-only tmpfs"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v --state-dir "$RO/state" -t tcp -a 127.0.0.1 -s 4420
if ! wait_for 15 io_live "${SUB}1"; then
	not_ok "$SCENARIO" "did not connect: $(ctrl_list | tr "\n" ";")"
elif ! monitor_logged "error: unable to create $RO/state: Read-only file system"; then
	not_ok "$SCENARIO" "no clear error naming $RO/state"
elif ! monitor_running; then
	not_ok "$SCENARIO" "the daemon died"
else
	ok "$SCENARIO"
fi
stop_monitor
umount "$RO"
