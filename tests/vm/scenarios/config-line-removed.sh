#!/bin/sh
# boot: shared
# timeout: 60
#
# A line removed from discovery.conf and SIGHUP: that address is released (our persistent
# discovery controller there deleted), the other line's stays, and the I/O controllers stay up
# (nvme-cli never disconnects subsystems for a removed line either).

SUB=nqn.2024-01.io.example:cfgrm
CONF=$VM_STATE/cfgrm.conf
dc_at() { ctrl_find "cntrltype=discovery .*trsvcid=$1"; }
has_dc_at() { [ -n "$(dc_at "$@")" ]; }
gone_at() { [ -z "$(dc_at "$1")" ]; }
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}2" || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
printf '%s\n' "--transport=tcp --traddr=127.0.0.1 --trsvcid=4420" \
	"--transport=tcp --traddr=127.0.0.1 --trsvcid=4421" > "$CONF"
start_monitor --persistent --autoconnect -v -C "$CONF"
if ! wait_for 20 io_live "${SUB}1" || ! wait_for 10 io_live "${SUB}2"; then
	not_ok "$SCENARIO" "not connected: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=4420" > "$CONF"
kill -HUP "$MON_PID"
wait_for 10 gone_at 4421 && released=yes || released=no
stop_remaining=$(dc_at 4420)
stop_monitor
if [ "$released" != yes ]; then
	not_ok "$SCENARIO" "the removed line's discovery controller is still there: $(ctrl_list | tr "\n" ";")"
elif [ -z "$stop_remaining" ]; then
	not_ok "$SCENARIO" "the line that stayed lost its discovery controller"
elif ! monitor_logged "no longer in the configuration: releasing it"; then
	not_ok "$SCENARIO" "no log line about the release"
elif ! io_live "${SUB}2"; then
	not_ok "$SCENARIO" "the I/O controller of the removed line went away"
else
	ok "$SCENARIO"
fi
