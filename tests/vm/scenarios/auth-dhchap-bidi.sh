#!/bin/sh
# boot: shared
# timeout: 120
#
# Bidirectional DH-HMAC-CHAP with an ffdhe2048 exchange: the host key from a key file, the
# controller key on the discovery.conf line. A key file readable by others is refused first,
# with an error naming the file and the fix, not the key; mode 0600 is taken. Both sides
# authenticate (the kernel says so), and the discovery controller of that line, which is given
# the keys with its address, still connects (nvmet's discovery service asks for none).

SUB=nqn.2024-01.io.example:auth-bidi
ETC=$VM_STATE/etc-auth-bidi
KEYFILE=$ETC/host.key
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB ")" -eq 1 ]; }

tgt_subsys "$SUB" 16M && tgt_port 1 tcp 127.0.0.1 4420 && tgt_link 1 "$SUB" &&
	tgt_auth "$SUB" "$(cat /etc/nvme/hostnqn)" "$AUTH_HOST_KEY" "$AUTH_CTRL_KEY" ffdhe2048 ||
	fail "cannot set up the target"
rm -rf "$ETC" && mkdir -p "$ETC" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "$AUTH_HOST_KEY" > "$KEYFILE" && chmod 0644 "$KEYFILE" &&
	echo "-t tcp -a 127.0.0.1 -s 4420 --dhchap-secret $KEYFILE --dhchap-ctrl-secret $AUTH_CTRL_KEY" > "$ETC/discovery.conf" ||
	fail "cannot write discovery.conf"
: > "$MON_LOG"
timeout 30 nvme-monitor --once -A -v --etc-dir "$ETC" >> "$MON_LOG" 2>&1
monitor_logged "discovery.conf:1: --dhchap-secret: key file $KEYFILE is readable or writable by group or others \(mode 0644\): chmod 600 it" ||
	fail "no clear refusal of the 0644 key file: $(grep -i key "$MON_LOG" | head -n 2 | tr '\n' ';')"
io_live && fail "connected although the line's key file was refused"
chmod 0600 "$KEYFILE"
dmesg -c > /dev/null
start_monitor -v -A -p --etc-dir "$ETC"
wait_for 30 io_live || fail "not connected with both keys: $(ctrl_list | tr '\n' ';')"
c=$(ctrl_find "cntrltype=io state=live subsysnqn=$SUB ")
dmesg | grep -q "$c: qid 0: authenticated with hash hmac(sha256) dhgroup ffdhe2048" ||
	fail "the kernel did not log an ffdhe2048 authentication of $c: $(dmesg | grep -i auth | tail -n 3 | tr '\n' ';')"
dmesg | grep "$c: qid 0" | sed 's/^/# dmesg: /'
[ "$(ctrl_attr "$c" dhchap_ctrl_secret)" != none ] || fail "$c has no controller key"
[ -n "$(ctrl_find "cntrltype=discovery state=live")" ] || fail "no persistent discovery controller"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC"
cat "$MON_LOG" >> "$VM_STATE/auth-all.log"
ok "$SCENARIO"
