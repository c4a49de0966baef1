#!/bin/sh
# boot: shared
# timeout: 90
#
# The target port is absent when the daemon starts: each failed discovery is logged and retried with
# growing delays; once the port appears the subsystem gets connected without any event or restart.

SUB=nqn.2024-01.io.example:down
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
retries() { grep -c "failed .* in a row" "$MON_LOG"; }
some_retries() { [ "$(retries)" -ge 3 ]; }

tgt_subsys "${SUB}1" 16M || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
if ! wait_for 20 some_retries; then
	not_ok "$SCENARIO" "expected at least 3 logged failures and retries"; stop_monitor; exit 0
fi
delays=$(grep -o "retrying in [0-9]* ms" "$MON_LOG" | head -n 3 | awk '{print $3}' | tr '\n' ' ')
tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1"
if ! wait_for 20 io_live "${SUB}1"; then
	not_ok "$SCENARIO" "not connected after the port came back: $(ctrl_list | tr "\n" ";")"
elif [ "$delays" != "1000 2000 4000 " ]; then
	not_ok "$SCENARIO" "retry delays did not grow: $delays"
elif ! monitor_logged "error: .*127\.0\.0\.1"; then
	not_ok "$SCENARIO" "the failures were not logged as errors"
else
	ok "$SCENARIO"
fi
stop_monitor
