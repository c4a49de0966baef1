#!/bin/sh
# boot: shared
# timeout: 120
#
# Our persistent discovery controller stays ours across resets that give it a new cntlid: its AEN
# is still handled, SIGTERM deletes it, nothing is left. The same across a handoff: an instance
# with --keep leaves it, its controller is reset until the cntlid changes, and the next instance
# adopts it by identity and deletes it at exit.

SUB=nqn.2024-01.io.example:reset
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
cntlid_of() { cat "/sys/class/nvme/$1/cntlid" 2>/dev/null; }
dc_at() { ctrl_find "cntrltype=discovery .*trsvcid=4420"; }
has_dc_at() { [ -n "$(dc_at "$@")" ]; }

# reset_until_new_cntlid CTRL: reset CTRL until its cntlid differs from what it was (nvmet hands
# out the lowest free cntlid, and the old one is freed a little after the reconnect begins: a
# second controller holding the freed number meanwhile makes the difference).
reset_until_new_cntlid() {
	local c=$1 before now i=0 hold
	before=$(cntlid_of "$c")
	while [ $i -lt 8 ]; do
		i=$((i + 1))
		echo 1 > "/sys/class/nvme/$c/reset_controller"
		hold=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=$HOSTNQN,hostid=$HOSTID")
		wait_for 15 ctrl_live "$c" || return 1
		[ -z "$hold" ] || echo 1 > "/sys/class/nvme/$hold/delete_controller"
		now=$(cntlid_of "$c")
		[ "$now" != "$before" ] && { note "$c: cntlid $before -> $now after $i reset(s)"; return 0; }
	done
	return 1
}

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M && tgt_port 2 tcp 127.0.0.1 4420 &&
	tgt_link 2 "${SUB}1" || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 io_live "${SUB}1" || { not_ok "$SCENARIO" "first subsystem not connected"; stop_monitor; exit 0; }
dc=$(dc_at)
reset_until_new_cntlid "$dc" || { not_ok "$SCENARIO" "the cntlid of $dc never changed"; stop_monitor; exit 0; }
tgt_link 2 "${SUB}2"
if ! wait_for 15 io_live "${SUB}2"; then
	not_ok "$SCENARIO" "AEN after the reset not handled: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
stop_monitor
if [ "$(ctrl_count cntrltype=discovery)" -ne 0 ]; then
	not_ok "$SCENARIO" "discovery controller left after SIGTERM: $(ctrl_list | tr "\n" ";")"; exit 0
fi

# Across a handoff.
start_monitor --persistent --autoconnect --keep --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 has_dc_at && wait_for 10 test -s /run/nvme-monitor/state ||
	{ not_ok "$SCENARIO" "no discovery controller for the handoff"; stop_monitor; exit 0; }
stop_monitor
dc=$(dc_at)
reset_until_new_cntlid "$dc" || { not_ok "$SCENARIO" "the cntlid of $dc never changed (handoff)"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 monitor_logged "adopted discovery controller $dc " ||
	{ not_ok "$SCENARIO" "$dc not adopted after its cntlid changed"; stop_monitor; exit 0; }
ndc=$(ctrl_count cntrltype=discovery)
stop_monitor
if [ "$ndc" -ne 1 ]; then
	not_ok "$SCENARIO" "$ndc discovery controllers after the handoff, expected 1"
elif [ "$(ctrl_count cntrltype=discovery)" -ne 0 ]; then
	not_ok "$SCENARIO" "adopted controller left after SIGTERM: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
