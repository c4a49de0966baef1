#!/bin/sh
# boot: shared
# timeout: 60
#
# A remove event read after the number was given to another controller. While the daemon is
# stopped (SIGSTOP), our persistent discovery controller is deleted and somebody else's takes its
# number at another port. On SIGCONT the daemon sees the loss of ours (the identity differs) and
# recreates it; the other controller is never touched, and survives our exit.

SUB=nqn.2024-01.io.example:reuse-n
dc_at() { ctrl_find "cntrltype=discovery .*trsvcid=$1"; }
has_dc_at() { [ -n "$(dc_at "$@")" ]; }

# nvmet enables a TCP port when its first subsystem is linked.
tgt_subsys "$SUB" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "$SUB" || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 has_dc_at 4420 || { not_ok "$SCENARIO" "no discovery controller"; stop_monitor; exit 0; }
wait_for 10 monitor_logged "connected $SUB"
ours=$(dc_at 4420)
kill -STOP "$MON_PID"
echo 1 > "/sys/class/nvme/$ours/delete_controller"
wait_for 10 sh -c "! test -e /sys/class/nvme/$ours"
theirs=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4421,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID")
note "ours was $ours, the new controller at port 4421 is $theirs"
kill -CONT "$MON_PID"
if [ "$theirs" != "$ours" ]; then
	not_ok "$SCENARIO" "the kernel did not reuse $ours (got $theirs): the scenario proves nothing"; stop_monitor; exit 0
fi
if ! wait_for 15 has_dc_at 4420; then
	not_ok "$SCENARIO" "our discovery controller was not recreated: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
stop_monitor
if ! ctrl_live "$theirs"; then
	not_ok "$SCENARIO" "the other controller $theirs did not survive: $(ctrl_list | tr "\n" ";")"
elif [ -n "$(dc_at 4420)" ]; then
	not_ok "$SCENARIO" "our recreated controller left after SIGTERM"
elif ! monitor_logged "discovery controller $ours for .* is gone: recreating it"; then
	not_ok "$SCENARIO" "no log line about the loss"
else
	ok "$SCENARIO"
fi
