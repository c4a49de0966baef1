#!/bin/sh
# boot: shared
# timeout: 150
#
# TLS settings reach the kernel; the TLS handshake itself cannot run here: it is done by a
# userspace agent (tlshd, ktls-utils), which Debian 12 does not package. nvmet port 1 names TLS
# 1.3 in its discovery log entries (addr_tsas tls1.3) with TREQ "not required", so a plain
# discovery controller can read them (the entry's SECTYPE is checked in the raw log page too).
# - No TLS configured: the entry only offers TLS, so it is connected in the clear.
# - --keyring (the kernel's .nvme keyring, by serial): the entry gets tls and keyring; the kernel
#   looks for the PSK there and says "no valid PSK found", which is said as one error.
# - --tls-key SERIAL: tls and tls_key; the kernel asks for a handshake and fails for lack of an
#   agent (ESRCH), which the daemon names.
# - --tls-key with a serial that is no key: the kernel says it did not find that key id.
# - A port that requires TLS (TREQ "required"): nvmet resets a plain connection, even a discovery
#   controller's, and the daemon's error says that a TLS-only port does that.
# A TLS-required entry that arrives with no TLS configured is therefore covered by the host tests
# (discover::tests): nvmet lists it only to hosts already talking TLS to that port.

SUB=nqn.2024-01.io.example:tls
ETC=$VM_STATE/etc-tls
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB ")" -eq 1 ]; }
# once ARGS...: one --once run against port 1, its output in $MON_LOG, the kernel's in $KLOG.
once() {
	dmesg -c > /dev/null
	: > "$MON_LOG"
	timeout 100 nvme-monitor --once -v -A --etc-dir "$ETC" "$@" >> "$MON_LOG" 2>&1
	dmesg > "$KLOG"
	cat "$MON_LOG" >> "$VM_STATE/auth-all.log"
}
KLOG=$VM_STATE/tls-dmesg.txt

tgt_subsys "$SUB" 16M && tgt_port 1 tcp 127.0.0.1 4420 &&
	echo "not required" > "$NVMET/ports/1/addr_treq" &&
	echo tls1.3 > "$NVMET/ports/1/addr_tsas" && tgt_link 1 "$SUB" || fail "cannot set up the target"
note "port 1: addr_treq=$(cat "$NVMET/ports/1/addr_treq") addr_tsas=$(cat "$NVMET/ports/1/addr_tsas")"
rm -rf "$ETC" && mkdir -p "$ETC" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "-t tcp -a 127.0.0.1 -s 4420" > "$ETC/discovery.conf" || fail "cannot write discovery.conf"
ring=$(awk '$9 == ".nvme:" { print $1 }' /proc/keys)
[ -n "$ring" ] || fail "no .nvme keyring in /proc/keys: $(head -n 5 /proc/keys | tr '\n' ';')"
note "the kernel's .nvme keyring is 0x$ring"

# The raw log page, as nvme-cli reads it: entry 0 (after the 1024-byte header) is the
# subsystem, TREQ at byte 3, SECTYPE at byte 768 of the entry.
dc=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=$HOSTNQN,hostid=$HOSTID") ||
	fail "cannot create a discovery controller"
wait_for 10 ctrl_live "$dc" || fail "$dc not live"
nvme get-log "/dev/$dc" --log-id=0x70 --log-len=3072 -b > "$VM_STATE/tls-dlog.bin" ||
	fail "cannot read the discovery log page"
byte() { od -A n -t u1 -j "$1" -N 1 "$VM_STATE/tls-dlog.bin" | tr -d ' '; }
e=1024
while [ "$(byte "$((e + 2))")" != 2 ] && [ "$e" -lt 3072 ]; do e=$((e + 1024)); done
# TREQ bits 1:0 are the secure channel (10b: not required); bit 2 is SQ flow control disable.
[ "$(($(byte "$((e + 3))") & 3))" = 2 ] && [ "$(byte "$((e + 768))")" = 2 ] ||
	fail "the NVM subsystem entry has TREQ $(byte "$((e + 3))") SECTYPE $(byte "$((e + 768))"), not 10b (not required) and 2 (TLS 1.3)"
note "discovery log entry at byte $e: TREQ $(byte "$((e + 3))") SECTYPE $(byte "$((e + 768))")"
echo 1 > "/sys/class/nvme/$dc/delete_controller"
wait_for 20 delete_all_ctrls || fail "cannot delete $dc"

once
io_live || fail "the entry that only offers TLS was not connected in the clear: $(grep -i "error\|warn" "$MON_LOG" | head -n 3 | tr '\n' ';')"
c=$(ctrl_find "cntrltype=io state=live subsysnqn=$SUB ")
note "no TLS configured: $c, tls_key $(ctrl_attr "$c" tls_key 2>/dev/null || echo none)"
wait_for 20 delete_all_ctrls || fail "cannot delete the controllers"

once --keyring "0x$ring"
io_live && fail "connected with --keyring although there is no PSK"
monitor_logged "tls,keyring=$(printf %d "0x$ring")" ||
	fail "the connect did not carry tls,keyring=$(printf %d "0x$ring"): $(grep "$SUB" "$MON_LOG" | head -n 2 | tr '\n' ';')"
grep -q "no valid PSK found" "$KLOG" || fail "the kernel did not look for a PSK: $(tail -n 5 "$KLOG" | tr '\n' ';')"
note "keyring: $(grep "no valid PSK" "$KLOG" | head -n 1)"
note "keyring: $(grep "$SUB" "$MON_LOG" | grep -E "error|failed" | head -n 1)"
wait_for 20 delete_all_ctrls

once --tls-key "0x$ring"
note "tls-key: $(grep -i "tls" "$KLOG" | head -n 3 | tr '\n' ';')"
note "tls-key: $(grep "tlshd" "$MON_LOG" | head -n 1)"
monitor_logged "tls,tls_key=$(printf %d "0x$ring")" || fail "the connect did not carry tls,tls_key"
grep -q "failed to start TLS: -3" "$KLOG" || fail "the kernel did not try a handshake: $(tail -n 3 "$KLOG" | tr '\n' ';')"
monitor_logged "no TLS handshake agent \(tlshd\) is running" ||
	fail "the daemon did not name the missing agent: $(grep -E "error|failed" "$MON_LOG" | head -n 2 | tr '\n' ';')"
wait_for 20 delete_all_ctrls

once --tls-key 0x7ffffff0
grep -q "7ffffff0 not found" "$KLOG" || fail "the kernel did not refuse the unknown key id: $(tail -n 3 "$KLOG" | tr '\n' ';')"
note "bad tls-key: $(grep "not found" "$KLOG" | head -n 1)"
wait_for 20 delete_all_ctrls

# A port that requires TLS: nvmet resets a connection in the clear (its own handshake
# request finds no agent either), even a discovery controller's; the daemon says what that may mean.
tgt_port 2 tcp 127.0.0.1 4421 && echo tls1.3 > "$NVMET/ports/2/addr_tsas" && tgt_link 2 "$SUB" ||
	fail "cannot set up port 2"
[ "$(cat "$NVMET/ports/2/addr_treq")" = required ] || fail "port 2: addr_treq $(cat "$NVMET/ports/2/addr_treq"), not required"
echo "-t tcp -a 127.0.0.1 -s 4421" > "$ETC/discovery.conf"
once
monitor_logged "4421: unable to connect .*a port that requires TLS resets one in the clear" ||
	fail "a plain connect to the TLS-only port: $(grep -E "error" "$MON_LOG" | head -n 2 | tr '\n' ';')"
note "TLS-only port: $(grep "nvmet_tcp" "$KLOG" | head -n 1)"
wait_for 20 delete_all_ctrls
ok "$SCENARIO"
