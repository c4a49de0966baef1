#!/bin/sh
# boot: shared
# timeout: 90
#
# nvme-monitor classifies the real uevents of a 6.12 kernel: a controller add and NVME_EVENT=connected
# (loop I/O controller from nvme-cli), a discovery log change AEN and NVME_EVENT=rediscover (a
# persistent discovery controller over TCP), FC nvmediscovery (fcloop) and a controller remove.
# Contract: at debug level the daemon logs "event: <kind> <ctrl> <address>" for each.

SUB=nqn.2024-01.io.example:seen
MISSING=

# expect WHAT REGEX: wait for a matching "event:" line in the daemon log, note it if it never comes.
expect() {
	wait_for 10 monitor_logged "event: $2" || MISSING="$MISSING; $1 (/event: $2/)"
}

tgt_subsys "${SUB}1" 16M && tgt_port 1 loop 1 && tgt_link 1 "${SUB}1" &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || {
	not_ok "$SCENARIO" "cannot set up the target"
	exit 0
}
start_monitor --dry-run -v --no-config
if ! wait_for 10 monitor_listening; then
	stop_monitor
	not_ok "$SCENARIO" "nvme-monitor is not listening to uevents after 10 s (exit status ${MON_RC:-?})"
	exit 0
fi

nvme connect -t loop -n "${SUB}1" -q "$HOSTNQN" -I "$HOSTID" > /dev/null
io=$(ctrl_find "transport=loop cntrltype=io .*subsysnqn=${SUB}1 ")
if [ -n "$io" ] && wait_for 10 ctrl_live "$io"; then
	expect "ctrl-add of $io" "ctrl-add $io loop"
	expect "connected of $io" "connected $io loop"
else
	MISSING="$MISSING; no loop I/O controller: $(ctrl_list)"
fi

pdc=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID")
if [ -n "$pdc" ] && wait_for 10 ctrl_live "$pdc"; then
	tgt_subsys "${SUB}2" 16M && tgt_link 2 "${SUB}2"
	expect "AEN on $pdc" "aen $pdc tcp .*traddr=127\.0\.0\.1.*trsvcid=4420"
	echo 1 > "/sys/class/nvme/$pdc/reset_controller"
	expect "rediscover on $pdc" "rediscover $pdc tcp .*traddr=127\.0\.0\.1.*trsvcid=4420"
else
	MISSING="$MISSING; no TCP persistent discovery controller: $(ctrl_list)"
fi

if fc_setup && fc_remote_port; then
	expect "FC nvmediscovery" "fc-discovery .*host_traddr=$FC_HOST_TRADDR.* traddr=$FC_TRADDR"
else
	MISSING="$MISSING; cannot set up fcloop"
fi

if [ -n "$io" ]; then
	echo 1 > "/sys/class/nvme/$io/delete_controller"
	expect "ctrl-remove of $io" "ctrl-remove $io loop"
fi

if ! monitor_running; then
	stop_monitor
	MISSING="$MISSING; nvme-monitor exited (status $MON_RC)"
else
	stop_monitor
fi
if [ -z "$MISSING" ]; then
	ok "$SCENARIO"
else
	not_ok "$SCENARIO" "missing:${MISSING#;}"
fi
