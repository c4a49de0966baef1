#!/bin/sh
# boot: shared
# default: no
# timeout: 1800
#
# make bench: time and peak RSS to discover and connect N subsystems (N = 16, 64, 256; loop and
# TCP): `nvme-monitor --once --autoconnect` against `nvme connect-all` with the same address, and
# against the kernel's floor: bench-floor writing the exact option strings we write (printed by a
# --dry-run over a discovery controller made by hand) straight to /dev/nvme-fabrics, one after
# another. Alternating, 5 runs each (3 at 256: deleting 256 controllers takes long under TCG).
# Every controller is deleted between runs. At 64, after each of our runs, a rescan with all 64
# connected: `nvme-monitor --once` again against `nvme connect-all` again (neither should create
# anything). "# bench connect ..." and "# bench rescan ..." lines for bench/report.

SUB=nqn.2024-01.io.example:bench-c
fail() {
	not_ok "$SCENARIO" "$*"
	exit 0
}
io_live() { [ "$(ctrl_count "cntrltype=io state=live")" -eq "$1" ]; }
# setup TRANSPORT N: N subsystems on one port; sets ARGS_OURS and ARGS_CLI (the same address).
setup() {
	local i=1
	while [ $i -le "$2" ]; do
		tgt_subsys "$SUB$i" 16M || return 1
		i=$((i + 1))
	done
	case $1 in
	tcp)
		tgt_port 2 tcp 127.0.0.1 4420 || return 1
		ARGS="-t tcp -a 127.0.0.1 -s 4420"
		port=2
		;;
	loop)
		tgt_port 1 loop || return 1
		ARGS="-t loop"
		port=1
		;;
	esac
	i=1
	while [ $i -le "$2" ]; do
		tgt_link $port "$SUB$i" || return 1
		i=$((i + 1))
	done
}

# floor_options TRANSPORT N FILE: the option strings nvme-monitor writes for the N subsystems,
# one per line: a --dry-run reads the log through a discovery controller made by hand (with our
# host identity, so it is used) and prints each string it would write.
floor_options() {
	local dcopts dc
	dcopts="nqn=nqn.2014-08.org.nvmexpress.discovery,transport=$1"
	[ "$1" = tcp ] && dcopts="$dcopts,traddr=127.0.0.1,trsvcid=4420"
	dcopts="$dcopts,hostnqn=$(cat /etc/nvme/hostnqn),hostid=$(cat /etc/nvme/hostid)"
	dc=$(fabrics_connect "$dcopts") || return 1
	# shellcheck disable=SC2086
	nvme-monitor --once --autoconnect --no-config --dry-run $ARGS 2>&1 |
		sed -n "s/.*: would write '\(.*\)'\$/\1/p" > "$3"
	echo 1 > "/sys/class/nvme/$dc/delete_controller"
	wait_for 30 no_ctrls || return 1
	[ "$(wc -l < "$3")" -eq "$2" ]
}

for tr in loop tcp; do
	for n in 16 64 256; do
		runs=5
		[ "$n" -lt 256 ] || runs=3
		setup "$tr" "$n" || fail "cannot set up $n subsystems over $tr"
		opts=$VM_STATE/floor-$tr-$n.opts
		floor_options "$tr" "$n" "$opts" || fail "no $n option strings over $tr from --dry-run: $(wc -l < "$opts") ($(head -c 300 "$opts"))"
		r=1
		while [ $r -le $runs ]; do
			for tool in ours nvme-cli floor; do
				if [ $tool = ours ]; then
					# shellcheck disable=SC2086
					res=$(bench-rusage nvme-monitor --once --autoconnect --no-config $ARGS)
				elif [ $tool = floor ]; then
					res=$(bench-rusage bench-floor "$opts")
				else
					# shellcheck disable=SC2086
					res=$(bench-rusage nvme connect-all $ARGS)
				fi
				live=$(ctrl_count "cntrltype=io state=live")
				echo "# bench connect $tr $n $tool $r $res live=$live"
				if [ $tool = ours ] && [ "$n" -eq 64 ]; then
					for again in ours nvme-cli; do
						if [ $again = ours ]; then
							# shellcheck disable=SC2086
							res=$(bench-rusage nvme-monitor --once --autoconnect --no-config $ARGS)
						else
							# shellcheck disable=SC2086
							res=$(bench-rusage nvme connect-all $ARGS)
						fi
						echo "# bench rescan $tr $n $again $r $res live=$(ctrl_count "cntrltype=io state=live") all=$(ctrl_count)"
					done
				fi
				wait_for 300 delete_parallel || fail "controllers left after $tool run $r: $(ctrl_count)"
			done
			r=$((r + 1))
		done
		tgt_reset
	done
done
ok "$SCENARIO"
