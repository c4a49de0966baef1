#!/bin/sh
# boot: shared
# timeout: 60
#
# FC with no configuration at all: the kernel's FC_EVENT=nvmediscovery uevent for a new remote port
# (fcloop) alone makes the daemon discover over FC and connect the subsystem behind it.

SUB=nqn.2024-01.io.example:auto-fc
fc_io_live() { [ "$(ctrl_count "transport=fc cntrltype=io state=live subsysnqn=$SUB")" -eq 1 ]; }

start_monitor --persistent --autoconnect --no-config -v
wait_for 10 monitor_listening || { not_ok "$SCENARIO" "daemon not listening"; exit 0; }
tgt_subsys "$SUB" 16M && fc_setup && tgt_port 3 fc "$FC_TRADDR" && tgt_link 3 "$SUB" && fc_remote_port ||
	{ not_ok "$SCENARIO" "cannot set up fcloop"; exit 0; }
if ! wait_for 15 fc_io_live; then
	not_ok "$SCENARIO" "no live FC I/O controller for $SUB: $(ctrl_list | tr "\n" ";")"
elif ! monitor_logged "event: fc-discovery"; then
	not_ok "$SCENARIO" "connected, but not from the FC event"
else
	stop_monitor
	if [ "$MON_RC" -ne 0 ]; then
		not_ok "$SCENARIO" "exit status $MON_RC"
	elif ! fc_io_live; then
		not_ok "$SCENARIO" "the I/O controller did not survive our exit: $(ctrl_list | tr "\n" ";")"
	else
		ok "$SCENARIO"
	fi
fi
