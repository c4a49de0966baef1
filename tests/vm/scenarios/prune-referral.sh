#!/bin/sh
# boot: shared
# timeout: 60
#
# A referral that no parent log names any more is released after the grace period: the port
# drops its referral (the kernel raises the AEN), and our persistent discovery controller at the
# referred port is deleted --prune-grace seconds later; the configured one stays.

SUB=nqn.2024-01.io.example:prune
dc_at() { ctrl_find "cntrltype=discovery .*trsvcid=$1"; }
has_dc_at() { [ -n "$(dc_at "$@")" ]; }
gone_at() { [ -z "$(dc_at "$1")" ]; }

# nvmet enables a TCP port when its first subsystem is linked.
tgt_subsys "$SUB" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "$SUB" && tgt_referral 2 to3 tcp 127.0.0.1 4421 || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v --prune-grace 3 -t tcp -a 127.0.0.1 -s 4420
if ! wait_for 20 has_dc_at 4421; then
	not_ok "$SCENARIO" "the referral was not followed: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
echo 0 > "$NVMET/ports/2/referrals/to3/enable"
rmdir "$NVMET/ports/2/referrals/to3"
wait_for 10 monitor_logged "no longer named by any discovery log"
t0=$(uptime_cs)
wait_for 15 gone_at 4421
ms=$(( ($(uptime_cs) - t0) * 10 ))
note "released ${ms} ms after the parent's log dropped it"
stop_monitor
if ! monitor_logged "no longer named by any discovery log"; then
	not_ok "$SCENARIO" "the referral was never orphaned"
elif ! gone_at 4421; then
	not_ok "$SCENARIO" "our controller at the dropped referral is still there"
elif [ "$ms" -lt 2000 ]; then
	not_ok "$SCENARIO" "released after ${ms} ms, before the 3 s grace"
else
	ok "$SCENARIO"
fi
