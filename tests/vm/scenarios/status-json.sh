#!/bin/sh
# boot: shared
# timeout: 90
#
# `nvme-monitor status`, against the daemon the way an operator meets it:
# - no daemon: `status -o json` says "running": false and exits 1;
# - running, one address served and one refused: the served one shows its persistent discovery
#   controller (ours, live), the last discovery ok and the I/O controller it connected (live); the
#   refused one shows the last discovery failed with the kernel's error and a next retry; the
#   daemon's pid is the one we started; the normal output says the same in words;
# - sd_notify STATUS= carries the one-line summary;
# - after SIGTERM the file is gone and `status` says no daemon runs; after a SIGKILL the file is
#   left, and `status` says its pid is gone (stale), not that a daemon runs.

SUB=nqn.2024-01.io.example:status
CONF=$VM_STATE/status-discovery.conf
SOCK=$VM_STATE/status-notify.sock
OUT=$VM_STATE/status.json
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
# has TEXT: the last status output has a line with TEXT (fixed string).
has() { grep -qF -- "$1" "$OUT"; }
status_json() { nvme-monitor status -o json > "$OUT" 2>&1; }
# The refused address is retried with a growing backoff: its block shows a failure once it ran.
refused_reported() { status_json && grep -q '"result": "failed"' "$OUT"; }

rm -rf /run/nvme-monitor
status_json && fail "status exited 0 with no daemon: $(tr '\n' ' ' < "$OUT")"
has '"running": false' || fail "no '\"running\": false' with no daemon: $(tr '\n' ' ' < "$OUT")"

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" ||
	fail "cannot set up the target"
# 4431: nothing listens there, the connect is refused at once.
printf '%s\n' "--transport=tcp --traddr=127.0.0.1 --trsvcid=4420" \
	"--transport=tcp --traddr=127.0.0.1 --trsvcid=4431" > "$CONF"
notify-listen "$SOCK" 40 > "$VM_STATE/status-notify.out" &
lpid=$!
sock_there() { [ -S "$SOCK" ]; }
wait_for 5 sock_there
export NOTIFY_SOCKET="$SOCK"
start_monitor --persistent --autoconnect -v -C "$CONF" --config "$VM_STATE/no-such-fabrics.conf"
unset NOTIFY_SOCKET
wait_for 20 io_live "${SUB}1" || fail "${SUB}1 not connected: $(ctrl_list | tr "\n" ";")"
wait "$lpid" || fail "no READY=1: $(tr '\n' ' ' < "$VM_STATE/status-notify.out")"
io=$(ctrl_find "cntrltype=io .*subsysnqn=${SUB}1 ")
dc=$(ctrl_find "cntrltype=discovery .*trsvcid=4420")
wait_for 10 refused_reported || fail "no failed discovery in the status: $(tr '\n' ' ' < "$OUT")"
status_json || fail "status exited non-zero while the daemon runs: $(tr '\n' ' ' < "$OUT")"
flat=$(tr -d '\n' < "$OUT" | tr -s ' ')
has '"running": true' || fail "not running: $flat"
has "\"pid\": $MON_PID," || fail "pid $MON_PID not in: $flat"
has '"summary": "1 discovery controller, 1 subsystem connected, 1 address retrying"' ||
	fail "summary: $flat"
# The served address: its discovery controller, the run, the I/O controller.
echo "$flat" | grep -qE "\"trsvcid\": \"4420\",.*\"discovery_controller\": \{ \"name\": \"$dc\", \"owner\": \"ours\", \"claimed_by\": null, \"state\": \"live\" \}, \"last_discovery\": \{ \"time\": [0-9]+, \"result\": \"ok\", \"error\": null \}, \"next_retry\": null, \"retry_in\": null, \"io_controllers\": \[ \{ \"name\": \"$io\", \"subsysnqn\": \"${SUB}1\", \"state\": \"live\" \} \]" ||
	fail "the served address ($dc, $io) is not as expected: $flat"
# The refused one: no controller, the error, a retry.
echo "$flat" | grep -qE '"trsvcid": "4431",.*"discovery_controller": null, "last_discovery": \{ "time": [0-9]+, "result": "failed", "error": "discovery at tcp traddr=127.0.0.1,trsvcid=4431: [^"]*(refused|Connection)[^"]*" \}, "next_retry": [0-9]+, "retry_in": [0-9]+, "io_controllers": \[\]' ||
	fail "the refused address is not as expected: $flat"
nvme-monitor status > "$OUT" 2>&1 || fail "status (normal) exited non-zero: $(tr '\n' ' ' < "$OUT")"
has "is running as pid $MON_PID" && has "tcp traddr=127.0.0.1,trsvcid=4431" && has ": failed: discovery at" &&
	has "next retry" && grep -qE "^  I/O controllers +$io +live +${SUB}1\$" "$OUT" ||
	fail "the normal output lacks what the JSON says: $(tr '\n' '|' < "$OUT")"
grep -q "^STATUS=1 discovery controller, 1 subsystem connected" "$VM_STATE/status-notify.out" ||
	fail "no STATUS= summary: $(tr '\n' ' ' < "$VM_STATE/status-notify.out")"

stop_monitor
[ -e /run/nvme-monitor/status ] && fail "the status file outlived the daemon"
status_json && fail "status exited 0 after the daemon stopped"
has '"running": false' || fail "after SIGTERM: $(tr '\n' ' ' < "$OUT")"

# SIGKILL: the file stays behind, and its pid is not taken for a daemon.
start_monitor --persistent --autoconnect -v -C "$CONF" --config "$VM_STATE/no-such-fabrics.conf"
pid=$MON_PID
status_there() { [ -s /run/nvme-monitor/status ]; }
wait_for 20 status_there || fail "the restarted daemon published no status"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
MON_PID=
status_json && fail "status exited 0 for a killed daemon: $(tr '\n' ' ' < "$OUT")"
if has '"running": false' && grep -q "pid $pid .*is gone: the file is stale" "$OUT"; then
	ok "$SCENARIO"
else
	not_ok "$SCENARIO" "after SIGKILL: $(tr '\n' ' ' < "$OUT")"
fi
delete_all_ctrls
rm -rf /run/nvme-monitor
