#!/bin/sh
# boot: shared
# default: no
# timeout: 300
#
# make bench: latency from a discovery log change AEN (a subsystem linked to the port) to the new
# subsystem's I/O controller being live. Ours: one `nvme-monitor --persistent --autoconnect`.
# Reference: a persistent DC from `nvme discover -p` and bench-aen-connect running nvme-cli per
# AEN as its udev rule does. 5 events each; "# bench aen ..." lines for bench/report.
# nvme-cli 2.3 (libnvme 1.3) reads the discovery log with RAE set, so nvmet raises no second AEN
# on that controller: each reference event gets a fresh `nvme discover -p` controller, and one
# last event on an already used one shows whether a second AEN arrives at all.

SUB=nqn.2024-01.io.example:bench-aen
EVENTS=5
fail() {
	not_ok "$SCENARIO" "$*"
	stop_monitor > /dev/null
	[ -z "${lis:-}" ] || kill "$lis" 2> /dev/null
	exit 0
}
# live_nqn NQN: an I/O controller of NQN is live. Builtins only, so polling every 10 ms stays cheap.
live_nqn() {
	local c n s
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/subsysnqn" ] || continue
		read -r n < "$c/subsysnqn" || continue
		[ "$n" = "$1" ] || continue
		read -r s < "$c/state" && [ "$s" = live ] && return 0
	done
	return 1
}
# latency TOOL K: link subsystem K, print the ms until its controller is live (10 ms resolution).
latency() {
	local nqn=$SUB-$1-$2 t0 t1 end
	tgt_subsys "$nqn" 16M || fail "cannot create $nqn"
	t0=$(uptime_cs)
	tgt_link 2 "$nqn"
	end=$((t0 + 3000))
	until live_nqn "$nqn"; do
		[ "$(uptime_cs)" -lt "$end" ] || { echo "# bench aen $1 $2 ms=timeout"; return; }
		sleep 0.01
	done
	t1=$(uptime_cs)
	echo "# bench aen $1 $2 ms=$(((t1 - t0) * 10))"
	sleep 1
}

tgt_subsys "$SUB-base" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB-base" ||
	fail "cannot set up the target"

start_monitor --persistent --autoconnect --no-config -t tcp -a 127.0.0.1 -s 4420
wait_for 30 live_nqn "$SUB-base" || fail "nvme-monitor did not connect $SUB-base"
k=1
while [ $k -le $EVENTS ]; do latency ours $k; k=$((k + 1)); done
stop_monitor > /dev/null
wait_for 60 delete_all_ctrls || fail "controllers left: $(ctrl_list | tr '\n' ';')"

# fresh_dc: the only discovery controller is a new one from `nvme discover -p`.
fresh_dc() {
	local c
	for c in /sys/class/nvme/nvme*; do
		grep -qx discovery "$c/cntrltype" 2> /dev/null && echo 1 > "$c/delete_controller"
	done
	nvme discover -p -t tcp -a 127.0.0.1 -s 4420 > /dev/null || fail "nvme discover -p failed"
	wait_for 10 [ "$(ctrl_count "cntrltype=discovery state=live")" -eq 1 ] || fail "no persistent DC from nvme-cli"
}
bench-aen-connect nvme > "$VM_STATE/aen-connect.log" 2>&1 &
lis=$!
wait_for 10 grep -q listening "$VM_STATE/aen-connect.log" || fail "bench-aen-connect did not start"
k=1
while [ $k -le $EVENTS ]; do
	fresh_dc
	latency nvme-cli $k
	k=$((k + 1))
done
latency nvme-cli-same-dc 1
kill "$lis"
wait "$lis" 2> /dev/null
note "bench-aen-connect ran: $(grep -c '^aen ' "$VM_STATE/aen-connect.log") connect-all"
ok "$SCENARIO"
