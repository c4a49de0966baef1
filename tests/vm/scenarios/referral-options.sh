#!/bin/sh
# boot: shared
# timeout: 60
#
# A referral is reached with the options of the configuration line it came from, as nvme-cli
# connect-all passes its options on: the subsystem behind the referred port gets the line's
# ctrl_loss_tmo and reconnect_delay, read back from sysfs.

SUB=nqn.2024-01.io.example:refopt
CONF=$VM_STATE/refopt.conf
io_of() { ctrl_find "cntrltype=io state=live subsysnqn=$1 "; }

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "${SUB}2" &&
	tgt_referral 2 to3 tcp 127.0.0.1 4421 || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=4420 --ctrl-loss-tmo=77 --reconnect-delay=7" > "$CONF"
start_monitor --once --autoconnect -v -C "$CONF"
wait_for 30 proc_gone "$MON_PID"
stop_monitor
a=$(io_of "${SUB}1") b=$(io_of "${SUB}2")
ta=$(cat "/sys/class/nvme/$a/ctrl_loss_tmo" 2>/dev/null) tb=$(cat "/sys/class/nvme/$b/ctrl_loss_tmo" 2>/dev/null)
rb=$(cat "/sys/class/nvme/$b/reconnect_delay" 2>/dev/null)
note "ctrl_loss_tmo: ${SUB}1 $ta, ${SUB}2 (via the referral) $tb; reconnect_delay $rb"
if [ "$MON_RC" -ne 0 ] || [ -z "$a" ] || [ -z "$b" ]; then
	not_ok "$SCENARIO" "exit $MON_RC, controllers: $(ctrl_list | tr "\n" ";")"
elif [ "$ta" != 77 ] || [ "$tb" != 77 ] || [ "$rb" != 7 ]; then
	not_ok "$SCENARIO" "the referral's subsystem did not get the line's options"
else
	ok "$SCENARIO"
fi
