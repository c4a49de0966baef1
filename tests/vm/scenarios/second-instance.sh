#!/bin/sh
# boot: shared
# timeout: 120
#
# One daemon per state directory (issue 10 item 5). Daemon A runs with -p against a TCP target.
# A second `nvme-monitor -p` with the same state directory refuses to start, naming A's pid, and exits
# non-zero without touching anything; `nvme-monitor --once -p` with the same state directory runs,
# leaves A's state file byte-identical and A's ready and lock files alone, and deletes none of A's
# controllers. A is unaffected throughout, and at its exit still deletes its own discovery controller.

SUB=nqn.2024-01.io.example:second
STATE=/run/nvme-monitor
B_LOG=$VM_STATE/second.log
O_LOG=$VM_STATE/once.log
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
ctrl_names() { ctrl_list | cut -d' ' -f1 | sort | tr '\n' ' '; }
# run_bg LOG TIMEOUT ARGS...: nvme-monitor ARGS in the background, its exit status in RC (or fail).
run_bg() {
	local log=$1 limit=$2 pid
	shift 2
	nvme-monitor "$@" > "$log" 2>&1 < /dev/null &
	pid=$!
	bg_gone() { proc_gone "$pid"; }
	if ! wait_for "$limit" bg_gone; then
		kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
		fail "nvme-monitor $* still running after $limit s: $(tail -n 5 "$log" | tr "\n" ";")"
	fi
	wait "$pid"
	RC=$?
}

rm -rf "$STATE"
tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"
start_monitor --persistent --no-config -v -t tcp -a 127.0.0.1 -s 4420
A=$MON_PID
wait_for 15 monitor_logged "startup discovery done" || fail "daemon A did not finish its startup pass"
dc=$(ctrl_find "cntrltype=discovery state=live")
[ -n "$dc" ] || fail "daemon A has no live discovery controller: $(ctrl_list | tr "\n" ";")"
listed() { grep -q "^dc $dc " "$STATE/state"; }
wait_for 5 listed || fail "A's state file does not list $dc: $(cat "$STATE/state")"
cp "$STATE/state" "$VM_STATE/state.before"
before=$(ctrl_names)

# A second daemon: refused, clearly, before it does anything.
run_bg "$B_LOG" 10 --persistent --no-config -v -t tcp -a 127.0.0.1 -s 4420
[ "$RC" -ne 0 ] || fail "the second daemon exited 0"
grep -qE "another nvme-monitor \(pid $A\) is running with state directory $STATE: refusing to start" "$B_LOG" ||
	fail "the second daemon did not name A (pid $A): $(tail -n 5 "$B_LOG" | tr "\n" ";")"
[ "$(ctrl_names)" = "$before" ] || fail "the second daemon changed the controllers: '$before' -> '$(ctrl_names)'"
cmp -s "$STATE/state" "$VM_STATE/state.before" || fail "the second daemon changed A's state file"
monitor_running || fail "daemon A died after the second daemon"

# --once beside A: proceeds, but A's files and controllers are not its to rewrite or delete.
run_bg "$O_LOG" 60 --once --persistent --no-config -v -t tcp -a 127.0.0.1 -s 4420
[ "$RC" -eq 0 ] || fail "--once exit status $RC: $(tail -n 5 "$O_LOG" | tr "\n" ";")"
cmp -s "$STATE/state" "$VM_STATE/state.before" ||
	fail "--once rewrote A's state file: $(cat "$STATE/state" | tr "\n" ";")"
for c in $before; do
	[ -e "/sys/class/nvme/$c" ] || fail "--once deleted $c (A's): $(ctrl_list | tr "\n" ";")"
done
ctrl_live "$dc" || fail "A's discovery controller $dc is not live after --once"
[ "$(cat "$STATE/ready" 2>/dev/null)" = "$A" ] || fail "--once took A's ready file away"
[ "$(cat "$STATE/lock" 2>/dev/null)" = "$A" ] || fail "A's pid is no longer in the lock file"
monitor_running || fail "daemon A died after --once"

# A still owns its discovery controller: deleted at its exit.
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "daemon A exit status $MON_RC"
gone() { [ ! -e "/sys/class/nvme/$dc" ]; }
wait_for 10 gone || fail "daemon A did not delete its $dc at exit"
ok "$SCENARIO"
