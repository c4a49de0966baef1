#!/bin/sh
# boot: shared
# timeout: 120
#
# Restarting the daemon three times and replaying the FC events never adds a controller: after the
# first start, the set of I/O controllers stays exactly the same.

SUB=nqn.2024-01.io.example:nodup
io_count() { ctrl_count "cntrltype=io state=live"; }
io_n() { [ "$(io_count)" -eq "$1" ]; }

tgt_subsys "${SUB}1" 16M && tgt_subsys "${SUB}2" 16M &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" &&
	fc_setup && tgt_port 3 fc "$FC_TRADDR" && tgt_link 3 "${SUB}2" && fc_remote_port ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
conf=$VM_STATE/discovery.conf
echo "-t tcp -a 127.0.0.1 -s 4420" > "$conf"
problem=
for round in 1 2 3; do
	start_monitor --persistent --autoconnect -v -C "$conf"
	wait_for 10 monitor_listening
	# The FC subsystem comes from the kernel's replay, which the daemon triggers at startup.
	if ! wait_for 15 io_n 2; then
		problem="round $round: expected 2 live I/O controllers: $(ctrl_list | tr "\n" ";")"; break
	fi
	set1=$(ctrl_list | grep "cntrltype=io" | cut -d' ' -f1 | sort | tr '\n' ' ')
	[ $round -eq 1 ] && first=$set1
	echo add > /sys/class/fc/fc_udev_device/nvme_discovery
	sleep 2
	set2=$(ctrl_list | grep "cntrltype=io" | cut -d' ' -f1 | sort | tr '\n' ' ')
	stop_monitor
	if [ "$set1" != "$first" ] || [ "$set2" != "$first" ]; then
		problem="round $round: I/O controllers changed: first '$first', now '$set1' then '$set2'"; break
	fi
done
if [ -n "$problem" ]; then
	not_ok "$SCENARIO" "$problem"
else
	ok "$SCENARIO"
fi
