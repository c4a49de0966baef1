#!/bin/sh
# boot: shared
# timeout: 60
#
# Fault matrix (found by fault-run-full's log): on a full state directory file system the
# instance lock used to be given up: statedir::lock took the flock, failed to write its pid into the
# lock file (ENOSPC) and dropped the locked descriptor, so a second daemon with the same
# --state-dir started too. Now the flock is kept when only the pid cannot be written: the second
# daemon refuses to start.

SUB=nqn.2024-01.io.example:fulllock
TINY=$VM_STATE/tinylock
fail() { not_ok "$SCENARIO" "$*"; [ -z "${B_PID:-}" ] || kill "$B_PID" 2>/dev/null; stop_monitor > /dev/null; umount "$TINY" 2>/dev/null; exit 0; }

tgt_subsys "${SUB}1" 8M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"
mkdir -p "$TINY" && mount -t tmpfs -o size=64k tmpfs "$TINY" || fail "cannot mount a 64 KiB tmpfs"
mkdir -p "$TINY/run"
dd if=/dev/zero of="$TINY/fill" bs=4k 2>/dev/null
start_monitor --persistent --no-config -v --state-dir "$TINY/nvme-monitor" --run-root "$TINY/run" -t tcp -a 127.0.0.1 -s 4420
wait_for 30 monitor_logged "startup discovery done" || fail "no startup pass"
grep -m 1 "instance lock" "$MON_LOG" | sed 's/^/# log A: /'
nvme-monitor --persistent --no-config -v --state-dir "$TINY/nvme-monitor" --run-root "$TINY/run" \
	-t tcp -a 127.0.0.1 -s 4420 > "$VM_STATE/second.log" 2>&1 < /dev/null &
B_PID=$!
wait_for 10 proc_gone "$B_PID"
grep -m 2 "instance lock\|second one" "$VM_STATE/second.log" | sed 's/^/# log B: /'
if ! proc_gone "$B_PID"; then
	kill "$B_PID"; wait "$B_PID" 2>/dev/null; B_PID=
	fail "a second daemon with the same --state-dir runs beside the first on a full file system (the instance lock was dropped)"
fi
wait "$B_PID" 2>/dev/null; B_PID=
grep -q "refusing to start a second one" "$VM_STATE/second.log" || fail "the second daemon ended without saying why"
stop_monitor
umount "$TINY"
ok "$SCENARIO"
