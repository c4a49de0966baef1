#!/bin/sh
# boot: shared
# timeout: 150
#
# FC, no configuration: the kernel sends FC_EVENT=nvmediscovery only when a remote port appears,
# so the daemon asks the FC transport to replay it (write `add` to nvme_discovery) whenever an FC
# controller goes, not only at start.
# 1. With the port present, the I/O controller is deleted by hand: only the replay can tell the
#    daemon the port is there (no port appears), and the subsystem comes back from it.
# 2. The target's nvmet port goes away (the remote port stays: a target that lost its port while
#    the fabric still lists it). The controllers are given up (ctrl_loss_tmo 2); each replay makes
#    the daemon connect, the association is refused and the new controller drops again: the
#    replays back off instead of looping (an earlier build looped here). The port comes back: the
#    subsystem is connected again.

SUB=nqn.2024-01.io.example:fc-drop
fc_io() { ctrl_find "transport=fc cntrltype=io state=live subsysnqn=$SUB "; }
fc_io_live() { [ -n "$(fc_io)" ]; }
fc_io_gone() { [ "$(ctrl_count "transport=fc cntrltype=io .*subsysnqn=$SUB ")" -eq 0 ]; }
replays() { grep -c "an FC controller went: asked the FC transport to replay" "$MON_LOG"; }
fc_events() { grep -c "event: fc-discovery" "$MON_LOG"; }
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

start_monitor --persistent --autoconnect --no-config -v --ctrl-loss-tmo 2 --reconnect-delay 1
wait_for 10 monitor_listening || fail "daemon not listening"
tgt_subsys "$SUB" 16M && fc_setup && tgt_port 3 fc "$FC_TRADDR" && tgt_link 3 "$SUB" && fc_remote_port ||
	fail "cannot set up fcloop"
wait_for 15 fc_io_live || fail "not connected over FC: $(ctrl_list | tr "\n" ";")"

# 1. Port present, controller deleted: the replay alone brings it back.
r=$(replays) e=$(fc_events)
echo 1 > "/sys/class/nvme/$(fc_io)/delete_controller"
wait_for 20 fc_io_live || fail "not reconnected after the delete: $(ctrl_list | tr "\n" ";"); replays $(replays), fc events $(fc_events)"
[ "$(replays)" -gt "$r" ] || fail "reconnected, but not through a replay"
[ "$(fc_events)" -gt "$e" ] || fail "reconnected without an fc-discovery event"

# 2. The nvmet port goes: drops, paced replays; then it comes back.
r=$(replays)
tgt_unlink 3 "$SUB" && rmdir "$NVMET/ports/3" || fail "cannot remove the nvmet port"
wait_for 30 fc_io_gone || fail "the kernel did not give the I/O controller up: $(ctrl_list | tr "\n" ";")"
sleep 20
n=$(( $(replays) - r ))
note "replays in the 20 s after the controllers were given up: $n (paced: at most 1 s, 2 s, 4 s, 8 s, 16 s apart)"
# Unpaced, every refused association asked for one more: dozens in 20 s.
[ "$n" -le 8 ] || fail "$n replays in 20 s: the replay feeds itself"
tgt_port 3 fc "$FC_TRADDR" && tgt_link 3 "$SUB" || fail "cannot re-create the nvmet port"
wait_for 90 fc_io_live || fail "not reconnected after the port came back: $(ctrl_list | tr "\n" ";")"
stop_monitor
if [ "$MON_RC" -ne 0 ]; then
	not_ok "$SCENARIO" "exit status $MON_RC"
else
	ok "$SCENARIO"
fi
