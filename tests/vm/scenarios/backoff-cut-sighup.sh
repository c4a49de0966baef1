#!/bin/sh
# boot: shared
# timeout: 60
#
# A new reason to discover cuts a backoff short. The configured address answers nothing for about
# 15 s, so the daemon backs off (1, 2, 4, 8 s); then the port appears and SIGHUP arrives (as the
# dracut online hook sends it): connected within 3 s of the SIGHUP, not at the end of the 8 s wait.

SUB=nqn.2024-01.io.example:cut
CONF=$VM_STATE/cut.conf
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "$SUB" 16M || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=4430" > "$CONF"
start_monitor --persistent --autoconnect -v -C "$CONF"
if ! wait_for 30 monitor_logged "failed \(4 in a row\): retrying in 8000 ms"; then
	not_ok "$SCENARIO" "no fourth failure with an 8 s backoff"; stop_monitor; exit 0
fi
tgt_port 2 tcp 127.0.0.1 4430 && tgt_link 2 "$SUB" || { not_ok "$SCENARIO" "cannot add the port"; exit 0; }
t0=$(uptime_cs)
kill -HUP "$MON_PID"
wait_for 10 io_live "$SUB"
t1=$(uptime_cs)
ms=$(( (t1 - t0) * 10 ))
note "connected ${ms} ms after SIGHUP"
runs=$(grep -cE "debug: discovery [0-9]+ at" "$MON_LOG")
stop_monitor
if ! io_live "$SUB"; then
	not_ok "$SCENARIO" "not connected 10 s after SIGHUP: $(ctrl_list | tr "\n" ";")"
elif [ "$ms" -gt 3000 ]; then
	not_ok "$SCENARIO" "connected ${ms} ms after SIGHUP, expected under 3000"
elif ! monitor_logged "a new reason to discover cuts its backoff short"; then
	not_ok "$SCENARIO" "no log line says the backoff was cut"
elif [ "$runs" -ne 5 ]; then
	not_ok "$SCENARIO" "$runs discovery runs, expected 5 (4 failures, 1 after SIGHUP)"
else
	ok "$SCENARIO"
fi
