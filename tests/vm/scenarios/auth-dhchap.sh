#!/bin/sh
# boot: shared
# timeout: 200
#
# DH-HMAC-CHAP against nvmet: a subsystem that admits only our host NQN, with a host key. Found
# through discovery (the discovery controller needs no key and is sent none: the key is given for
# every connection, not with the address), connected with the key, and the kernel says it
# authenticated. Without the key the same subsystem is refused, and with a wrong host key too
# (the target's refusal, not the host's: the other half of auth-wrong-key).

SUB=nqn.2024-01.io.example:auth
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB ")" -eq 1 ]; }

tgt_subsys "$SUB" 16M && tgt_port 1 tcp 127.0.0.1 4420 && tgt_link 1 "$SUB" &&
	tgt_auth "$SUB" "$(cat /etc/nvme/hostnqn)" "$AUTH_HOST_KEY" || fail "cannot set up the target"
ETC=$VM_STATE/etc-auth
rm -rf "$ETC" && mkdir -p "$ETC" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "-t tcp -a 127.0.0.1 -s 4420" > "$ETC/discovery.conf" || fail "cannot write discovery.conf"
dmesg -c > /dev/null
start_monitor --etc-dir "$ETC" -v -A -p --dhchap-secret "$AUTH_HOST_KEY"
wait_for 20 io_live || fail "the subsystem was not connected: $(ctrl_list | tr '\n' ';')"
c=$(ctrl_find "cntrltype=io state=live subsysnqn=$SUB ")
dmesg | grep -q "$c: qid 0: authenticated" || fail "the kernel did not log $c authenticated: $(dmesg | grep -i auth | tail -n 3 | tr '\n' ';')"
note "dmesg: $(dmesg | grep "qid 0: authenticated" | head -n 1)"
dc=$(ctrl_find "cntrltype=discovery state=live")
[ -n "$dc" ] || fail "no persistent discovery controller"
[ "$(ctrl_attr "$dc" dhchap_secret)" = none ] || fail "the discovery controller was given a key: $(ctrl_attr "$dc" dhchap_secret | cut -c1-10)"
stop_monitor
# The same without the key: refused, said once, not a flood.
wait_for 20 delete_all_ctrls || fail "cannot delete the controllers"
: > "$MON_LOG"
timeout 100 nvme-monitor --once -A --no-config -v -t tcp -a 127.0.0.1 -s 4420 >> "$MON_LOG" 2>&1
io_live && fail "connected without the key"
monitor_logged "error: .*$SUB" || fail "the refusal without a key was not said: $(grep "$SUB" "$MON_LOG" | tail -n 2 | tr '\n' ';')"
note "without the key: $(grep "$SUB" "$MON_LOG" | grep -i error | head -n 1 | cut -c1-200)"
# A wrong host key: the target refuses it (its AUTH_Failure1), and the daemon says so.
wait_for 20 delete_all_ctrls
cat "$MON_LOG" >> "$VM_STATE/auth-all.log"
: > "$MON_LOG"
dmesg -c > /dev/null
timeout 100 nvme-monitor --once -A --no-config -v -t tcp -a 127.0.0.1 -s 4420 --dhchap-secret "$AUTH_WRONG" >> "$MON_LOG" 2>&1
note "wrong host key, kernel: $(dmesg | grep -v nvmet_tcp | tail -n 6 | tr '\n' ';')"
io_live && fail "connected with a wrong host key"
monitor_logged "$SUB.*authentication failed" || fail "the wrong host key was not said: $(grep "$SUB" "$MON_LOG" | tail -n 2 | tr '\n' ';')"
note "wrong host key: $(grep "$SUB" "$MON_LOG" | grep "authentication failed" | head -n 1 | cut -c1-160)"
cat "$MON_LOG" >> "$VM_STATE/auth-all.log"
ok "$SCENARIO"
