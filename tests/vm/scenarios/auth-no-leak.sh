#!/bin/sh
# boot: shared
# timeout: 420
#
# No key leaves the process in clear. Every way of giving keys at once (a key file on the command
# line, a discovery.conf line, nvme-fabrics.conf [Host], [Discovery Controller] and [Subsystem]),
# good keys and a wrong one (so connect errors quoting option strings are logged), at debug
# level, to stderr and then to /dev/kmsg; then every test key is looked for in: the daemon's
# output, dmesg, the state file, the status file, `status` and `status -o json`, a dry run's
# output, and the logs the other auth-* scenarios of this boot kept. The daemon says it made
# itself non-dumpable (prctl PR_SET_DUMPABLE 0). The refused connect (a wrong controller key) can
# hold the daemon for the kernel's admin timeout (10 s here, see auth-wrong-key), and the good path may
# come after it, so every wait allows for that.

SUB=nqn.2024-01.io.example:leak
WRONG=nqn.2024-01.io.example:leak-wrong
ETC=$VM_STATE/etc-auth-leak
OUT=$VM_STATE/leak
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB ")" -eq 1 ]; }
tried_wrong() { grep -q "authentication failed" "$MON_LOG"; }

tgt_subsys "$SUB" 16M && tgt_subsys "$WRONG" 16M && tgt_port 1 tcp 127.0.0.1 4420 &&
	tgt_port 2 tcp 127.0.0.1 4421 && tgt_link 1 "$SUB" && tgt_link 2 "$WRONG" &&
	tgt_auth "$SUB" "$(cat /etc/nvme/hostnqn)" "$AUTH_HOST_KEY" "$AUTH_CTRL_KEY" &&
	tgt_auth "$WRONG" "$(cat /etc/nvme/hostnqn)" "$AUTH_HOST_KEY" "$AUTH_CTRL_KEY" || fail "cannot set up the target"
rm -rf "$ETC" "$OUT" && mkdir -p "$ETC" "$OUT" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "$AUTH_HOST_KEY" > "$ETC/host.key" && chmod 0600 "$ETC/host.key" &&
	echo "-t tcp -a 127.0.0.1 -s 4420 --dhchap-ctrl-secret $AUTH_CTRL_KEY" > "$ETC/discovery.conf" &&
	printf '[Host]\nkxchap-secret = %s\n\n[Discovery Controller]\nkxchap-secret = %s\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4421\n\n[Subsystem]\nnqn = %s\nkxchap-secret = %s\nkxchap-ctrl-secret = %s\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4421\n' \
		"$AUTH_SUB_KEY" "$AUTH_SUB_KEY" "$WRONG" "$AUTH_HOST_KEY" "$AUTH_WRONG" > "$ETC/nvme-fabrics.conf" ||
	fail "cannot write the configuration"
start_monitor -v -A -p --etc-dir "$ETC" --dhchap-secret "$ETC/host.key"
wait_for 100 io_live || fail "not connected: $(ctrl_list | tr '\n' ';')"
wait_for 100 tried_wrong || fail "the wrong key was not refused: $(tail -n 5 "$MON_LOG" | tr '\n' ';')"
monitor_logged "DH-HMAC-CHAP keys configured: no core dumps of this process" ||
	fail "the daemon did not make itself non-dumpable"
nvme-monitor status > "$OUT/status.txt" 2>&1
nvme-monitor status -o json > "$OUT/status.json" 2>&1
grep -q "$SUB" "$OUT/status.txt" || fail "status does not list $SUB: $(head -n 5 "$OUT/status.txt" | tr '\n' ';')"
cp /run/nvme-monitor/status "$OUT/status.file" 2> /dev/null
cp /run/nvme-monitor/state "$OUT/state.file" || fail "no state file"
stop_monitor
cp "$MON_LOG" "$OUT/stderr.log"
# The same to the kernel log, and a dry run.
wait_for 20 delete_all_ctrls || fail "cannot delete the controllers"
dmesg -c > /dev/null
timeout 150 nvme-monitor --once -v -A --log kmsg --etc-dir "$ETC" --dhchap-secret "$ETC/host.key" > "$OUT/kmsg-run.out" 2>&1
dmesg > "$OUT/dmesg.txt"
grep -q "nvme-monitor\[" "$OUT/dmesg.txt" || fail "the kmsg run logged nothing to the kernel log"
grep -q "authentication failed" "$OUT/dmesg.txt" || fail "the kmsg run did not log the failed authentication"
timeout 150 nvme-monitor --once --dry-run -v -A --etc-dir "$ETC" --dhchap-secret "$ETC/host.key" > "$OUT/dry-run.out" 2>&1
grep -q "dhchap_secret=<redacted>" "$OUT/dry-run.out" || fail "the dry run does not show the key redacted: $(grep "would" "$OUT/dry-run.out" | head -n 2 | tr '\n' ';')"
leaks=$(auth_leaks "$OUT"/* "$VM_STATE/auth-all.log")
[ -z "$leaks" ] || fail "keys leaked: $(echo "$leaks" | tr '\n' ';')"
note "searched: $(ls "$OUT" | tr '\n' ' ')$( [ -e "$VM_STATE/auth-all.log" ] && echo "auth-all.log ($(wc -l < "$VM_STATE/auth-all.log") lines)")"
# The search finds a key where there is one (or the check above proves nothing).
[ -n "$(auth_leaks "$ETC/discovery.conf")" ] || fail "auth_leaks does not find the key in discovery.conf"
wait_for 20 delete_all_ctrls
ok "$SCENARIO"
