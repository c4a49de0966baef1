#!/bin/sh
# boot: shared
# timeout: 120
#
# Fault matrix: the state directory's file system is full. A 64 KiB tmpfs holds --state-dir and
# --run-root (where the udev rule mask goes) and is filled with dd before the daemon starts: the
# state write fails with a clear error naming the file, the daemon keeps running and connects. Once
# space is back, a state change (a second configured address on SIGHUP) writes the state file again
# ("state file written again"), and it agrees with sysfs. SIGTERM leaves nothing of ours behind.

SUB=nqn.2024-01.io.example:full
TINY=$VM_STATE/tiny
STATE=$TINY/nvme-monitor/state
CONF=$VM_STATE/full.conf
fail() { not_ok "$SCENARIO" "$*"; stop_monitor > /dev/null; umount "$TINY" 2>/dev/null; exit 0; }
settled() { fault_state_complete "$STATE" "$FOREIGN" && fault_subsys_once "${SUB}1" "${SUB}2" "${SUB}f"; }
two_dcs() { [ "$(grep -c '^dc ' "$STATE" 2>/dev/null)" -eq 2 ]; }

tgt_subsys "${SUB}1" 8M && tgt_subsys "${SUB}2" 8M && tgt_subsys "${SUB}f" 8M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}2" &&
	tgt_port 4 tcp 127.0.0.1 4422 && tgt_link 4 "${SUB}f" || fail "cannot set up the target"
FOREIGN=$(fault_foreign_dc 4422)
ctrl_live "$FOREIGN" || fail "no foreign discovery controller"
mkdir -p "$TINY" && mount -t tmpfs -o size=64k tmpfs "$TINY" || fail "cannot mount a 64 KiB tmpfs"
mkdir -p "$TINY/run"
dd if=/dev/zero of="$TINY/fill" bs=4k 2>/dev/null
note "tmpfs filled: $(df -k "$TINY" | tail -n 1)"
echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=4420" > "$CONF"
start_monitor --persistent --autoconnect -v -C "$CONF" --state-dir "$TINY/nvme-monitor" --run-root "$TINY/run"
wait_for 30 monitor_logged "startup discovery done" || fail "no startup pass"
wait_for 20 fault_subsys_once "${SUB}1" || fail "not connected while full: $FAULT_WHY"
wait_for 5 monitor_logged "error: .*$TINY/nvme-monitor.*No space left on device" ||
	fail "no clear error naming the state file and ENOSPC"
grep -E "No space left|written again" "$MON_LOG" | sed 's/^/# log: /'
monitor_running || fail "the daemon died"
rm -f "$TINY/fill"
printf '%s\n' "--transport=tcp --traddr=127.0.0.1 --trsvcid=4420" \
	"--transport=tcp --traddr=127.0.0.1 --trsvcid=4421" > "$CONF"
kill -HUP "$MON_PID"
wait_for 20 monitor_logged "state file written again" || fail "no 'state file written again' once space was back"
wait_for 20 two_dcs || fail "the state file does not list both discovery controllers: $(tr '\n' ';' < "$STATE")"
wait_for 20 settled || fail "after the space came back: $FAULT_WHY"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC after SIGTERM"
fault_after_exit "$FOREIGN" "${SUB}1" "${SUB}2" "${SUB}f" || fail "after SIGTERM: $FAULT_WHY"
[ ! -e "$STATE" ] || fail "state file left after SIGTERM"
umount "$TINY"
ok "$SCENARIO"
