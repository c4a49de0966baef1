#!/bin/sh
# boot: shared
# timeout: 120
#
# Hostile objects in the state directory (issue 10 item 9). The state file decides what a later
# instance deletes, so nothing in that directory is followed, blocked on or replaced:
# (a) the state file is a symlink to /tmp/x: the daemon starts, warns, adopts nothing, says it cannot
#     write the state file, and never writes through the link (/tmp/x unchanged, the link left);
# (b) the state file is a FIFO: the daemon is not blocked opening it (it starts at once), says so,
#     keeps running, and leaves the FIFO;
# (c) the directory is writable by group or others: the daemon refuses to start (exit status 1) with
#     an error naming the directory, its mode and the fix, and creates nothing (needs the lock, which
#     checks the directory before anything is connected).

SUB=nqn.2024-01.io.example:hostile
STATE=/run/nvme-monitor
X=/tmp/x
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
no_dc() { [ "$(ctrl_count "cntrltype=discovery")" -eq 0 ]; }
start() { start_monitor --persistent --no-config -v -t tcp -a 127.0.0.1 -s 4420; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"

# (a) a symlink where the state file should be.
rm -rf "$STATE" && mkdir -m 0700 "$STATE" || fail "cannot create $STATE"
printf 'not yours\n' > "$X"
ln -s "$X" "$STATE/state"
start
wait_for 15 monitor_logged "startup discovery done" || fail "symlink: startup pass did not finish"
monitor_logged "warning: unable to read $STATE/state: is a symlink: refusing to follow it" ||
	fail "symlink: no warning naming $STATE/state as a symlink"
wait_for 10 monitor_logged "error: unable to replace $STATE/state: is a symlink" ||
	fail "symlink: no clear error when the state file could not be written"
monitor_logged "adopted discovery controller" && fail "symlink: adopted something"
monitor_running || fail "symlink: the daemon died"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "symlink: exit status $MON_RC"
[ "$(cat "$X")" = "not yours" ] || fail "symlink: wrote through it: $X is now '$(cat "$X")'"
[ -L "$STATE/state" ] || fail "symlink: the link was removed or replaced (not ours to delete)"
wait_for 10 no_dc || fail "symlink: our discovery controller was not deleted: $(ctrl_list | tr "\n" ";")"

# (b) a FIFO there: opening it without O_NONBLOCK would wait for a writer forever.
rm -rf "$STATE" && mkdir -m 0700 "$STATE" && mkfifo -m 0600 "$STATE/state" || fail "cannot make the FIFO"
start
wait_for 5 monitor_logged "warning: unable to read $STATE/state: is a FIFO, not a regular file: refusing it" ||
	fail "FIFO: no warning within 5 s (blocked on the FIFO?)"
wait_for 15 monitor_logged "startup discovery done" || fail "FIFO: startup pass did not finish"
wait_for 10 monitor_logged "error: unable to replace $STATE/state: is a FIFO" ||
	fail "FIFO: no clear error when the state file could not be written"
monitor_running || fail "FIFO: the daemon died"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "FIFO: exit status $MON_RC"
[ -p "$STATE/state" ] || fail "FIFO: the FIFO was removed or replaced"
wait_for 10 no_dc || fail "FIFO: our discovery controller was not deleted: $(ctrl_list | tr "\n" ";")"

# (c) a directory others can write to: refused before anything is done.
for mode in 0777 0770; do
	rm -rf "$STATE" && mkdir -m "$mode" "$STATE" || fail "cannot create $STATE $mode"
	start
	gone() { proc_gone "$MON_PID"; }
	wait_for 10 gone || fail "mode $mode: the daemon did not refuse to start"
	stop_monitor
	[ "$MON_RC" -eq 1 ] || fail "mode $mode: exit status $MON_RC, not 1 (fatal)"
	monitor_logged "error: unable to use state directory $STATE: it is writable by group or others \(mode $mode\); fix with chmod 0700" ||
		fail "mode $mode: no clear error naming the directory and its mode"
	[ "$(stat -c %a "$STATE")" = "${mode#0}" ] || fail "mode $mode: the directory's mode was changed"
	[ -z "$(ls -A "$STATE")" ] || fail "mode $mode: files created in a refused directory: $(ls -A "$STATE")"
	no_dc || fail "mode $mode: a refused daemon created a controller: $(ctrl_list | tr "\n" ";")"
done
rm -rf "$STATE" "$X"
ok "$SCENARIO"
