#!/bin/sh
# boot: shared
# timeout: 240
#
# A key that does not match: the controller proves a different key than ours (a wrong controller
# key), so the kernel refuses the connect (EKEYREJECTED). nvme-monitor says "authentication
# failed" once, not on every try; it does not retry on the 1, 2, 4 s... backoff (one connect in
# 15 s), but after its long wait, or at once on SIGHUP (a fixed key is read then), which here
# fails again without saying it twice. The other subsystem on the same port, which needs no
# key, is connected all the same. A refused connect sometimes returns at once and sometimes
# only after the kernel's admin timeout (10 s in the VM, 60 s by default: nvmet drops the
# connection after its failure message, and the host waits for a completion that never comes),
# so the waits here allow for that, and the note says how long the first refusal took.

SUB=nqn.2024-01.io.example:auth-wrong
OPEN=nqn.2024-01.io.example:auth-open
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
tries() { dmesg | grep -c "creating nvm controller [0-9]* for subsystem $SUB for"; }
said() { grep -c "error: .*$SUB.*authentication failed" "$MON_LOG"; }

tgt_subsys "$SUB" 16M && tgt_subsys "$OPEN" 16M && tgt_port 1 tcp 127.0.0.1 4420 &&
	tgt_link 1 "$SUB" && tgt_link 1 "$OPEN" &&
	tgt_auth "$SUB" "$(cat /etc/nvme/hostnqn)" "$AUTH_HOST_KEY" "$AUTH_CTRL_KEY" || fail "cannot set up the target"
dmesg -c > /dev/null
t0=$(uptime_cs)
start_monitor --no-config -v -A -p -t tcp -a 127.0.0.1 -s 4420 \
	--dhchap-secret "$AUTH_HOST_KEY" --dhchap-ctrl-secret "$AUTH_WRONG"
wait_for 90 monitor_logged "authentication failed" || fail "no \"authentication failed\": $(grep "$SUB" "$MON_LOG" | tail -n 2 | tr '\n' ';')"
note "the refusal took $(( ($(uptime_cs) - t0) / 100 )) s from the start"
wait_for 10 live "$OPEN" || fail "the subsystem that needs no key was not connected: $(ctrl_list | tr '\n' ';')"
grep "$SUB" "$MON_LOG" | head -n 3 | sed 's/^/# log: /'
dmesg | grep -i -e "qid 0" | tail -n 3 | sed 's/^/# dmesg: /'
sleep 15
live "$SUB" && fail "connected with the wrong key"
[ "$(tries)" -eq 1 ] || fail "$(tries) connects of $SUB in 15 s: retried on the short backoff"
[ "$(said)" -eq 1 ] || fail "\"authentication failed\" said $(said) times, not once"
monitor_logged "$SUB.*tried again every 10 min; fix the key and send SIGHUP" || fail "the log does not say what happens next"
kill -HUP "$MON_PID"
retried() { [ "$(tries)" -ge 2 ]; }
wait_for 10 retried || fail "SIGHUP did not try $SUB again"
answered() { [ "$(grep -c "unable to connect nqn=$SUB," "$MON_LOG")" -ge 2 ]; }
wait_for 90 answered || fail "the retry after SIGHUP did not end"
grep "unable to connect nqn=$SUB," "$MON_LOG" | tail -n 1 | cut -c1-40 | sed 's/^/# second try logged as: /'
[ "$(said)" -eq 1 ] || fail "the SIGHUP retry said \"authentication failed\" again ($(said) times)"
live "$OPEN" || fail "$OPEN went away"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC"
cat "$MON_LOG" >> "$VM_STATE/auth-all.log"
ok "$SCENARIO"
