#!/bin/sh
# boot: shared
# timeout: 90
#
# The initramfs-to-root handoff: instance 1 (--persistent --autoconnect --keep) connects and is stopped
# with SIGTERM, leaving its discovery controller up and listed in the state file. Instance 2 (no
# --keep) adopts it: same device, no new connect, no duplicate; at its exit it deletes it.

SUB=nqn.2024-01.io.example:handoff
STATE=/run/nvme-monitor
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
dc_live() { [ "$(ctrl_count "cntrltype=discovery state=live")" -eq 1 ]; }
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

rm -rf "$STATE"
tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"
start_monitor --persistent --autoconnect --keep --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 io_live "${SUB}1" || fail "instance 1 did not connect: $(ctrl_list | tr "\n" ";")"
dc=$(ctrl_find "cntrltype=discovery state=live")
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "instance 1 exit status $MON_RC"
ctrl_live "$dc" || fail "--keep: $dc is gone after instance 1: $(ctrl_list | tr "\n" ";")"
grep -q "^dc $dc " "$STATE/state" || fail "state file does not list $dc: $(cat "$STATE/state")"
before=$(ctrl_list | cut -d' ' -f1 | sort | tr '\n' ' ')

start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 10 monitor_logged "adopted discovery controller $dc" || fail "instance 2 did not adopt $dc"
wait_for 10 monitor_logged "startup discovery done" || fail "instance 2 did not finish its startup pass"
after=$(ctrl_list | cut -d' ' -f1 | sort | tr '\n' ' ')
[ "$before" = "$after" ] || fail "controllers changed across the handoff: '$before' -> '$after'"
monitor_logged "created .*discovery controller" && fail "instance 2 created a discovery controller"
monitor_logged "connected .* as nvme" && fail "instance 2 connected something again"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "instance 2 exit status $MON_RC"
gone() { [ ! -e "/sys/class/nvme/$dc" ]; }
wait_for 10 gone || fail "instance 2 (no --keep) did not delete the adopted $dc"
io_live "${SUB}1" || fail "the I/O controller did not survive: $(ctrl_list | tr "\n" ";")"
ok "$SCENARIO"
