#!/bin/sh
# boot: own
# default: no
# timeout: 1500
#
# Measuring, not a test: this build against another one in the same boot, since wall times under
# TCG move 10-20% from boot to boot and only a side-by-side run says what a change bought. The
# other build comes in as nvme-monitor-base (any path whose file is named so):
#   git worktree add /tmp/base BASE && (cd /tmp/base && cargo build --release --locked \
#     --target x86_64-unknown-linux-musl) && mkdir -p /tmp/b && cp /tmp/base/target/x86_64-unknown-linux-musl/release/nvme-monitor /tmp/b/nvme-monitor-base
#   VM_JOBS=1 VM_EXTRA_BINS=/tmp/b/nvme-monitor-base tests/vm/run --keep-console compare-builds
# Three rounds, the builds taking turns to go first, of: a `--once` connect of 256 subsystems
# over loop and the same `--once` again (all connected), beside bench-floor; then startup to the
# ready file with 8 and 64 persistent discovery controllers over TCP. Prints "# compare ..."
# lines only.

BASE=nvme-monitor-base
command -v $BASE > /dev/null || {
	not_ok "$SCENARIO" "$BASE is not in the initramfs (VM_EXTRA_BINS)"
	exit 0
}
SUB=nqn.2024-01.io.example:cmp
# builds ROUND: both builds, the first one first in odd rounds: the first run after a teardown
# pays for the kernel's leftover work (an 8-DC startup measured 200 ms slower in that place).
builds() { if [ $(($1 % 2)) = 1 ]; then echo nvme-monitor $BASE; else echo $BASE nvme-monitor; fi; }
tgt_port 1 loop || { not_ok "$SCENARIO" "no loop port"; exit 0; }
i=1
while [ $i -le 256 ]; do
	tgt_subsys "$SUB$i" 16M && tgt_link 1 "$SUB$i" || { not_ok "$SCENARIO" "subsystem $i"; exit 0; }
	i=$((i + 1))
done
dc=$(fabrics_connect "nqn=$DISC_NQN,transport=loop,hostnqn=$HOSTNQN,hostid=$HOSTID")
nvme-monitor --once --autoconnect --no-config --dry-run -t loop 2>&1 |
	sed -n "s/.*: would write '\(.*\)'\$/\1/p" > "$VM_STATE/opts"
echo 1 > "/sys/class/nvme/$dc/delete_controller"
wait_for 30 no_ctrls || { not_ok "$SCENARIO" "controllers left"; exit 0; }
for round in 1 2 3; do
	for bin in $(builds $round) bench-floor; do
		if [ $bin = bench-floor ]; then
			note "compare connect-256 $round $bin $(bench-rusage bench-floor "$VM_STATE/opts")"
		else
			set -- $bin --once --autoconnect --no-config -t loop
			note "compare connect-256 $round $bin $(bench-rusage "$@")"
			note "compare rescan-256 $round $bin $(bench-rusage "$@")"
		fi
		wait_for 600 delete_parallel || note "compare: controllers left: $(ctrl_count)"
	done
done

conf=$VM_STATE/compare.conf
ready=/run/nvme-monitor/ready
tgt_subsys nqn.2024-01.io.example:cmp-idle 16M || { not_ok "$SCENARIO" "subsystem"; exit 0; }
i=1
while [ $i -le 64 ]; do
	tgt_port $((i + 1)) tcp 127.0.0.1 $((4419 + i)) && tgt_link $((i + 1)) nqn.2024-01.io.example:cmp-idle ||
		{ not_ok "$SCENARIO" "port $i"; exit 0; }
	i=$((i + 1))
done
for round in 1 2; do
	for n in 8 64; do
		: > "$conf"
		i=1
		while [ $i -le $n ]; do
			echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=$((4419 + i))" >> "$conf"
			i=$((i + 1))
		done
		for bin in $(builds $round); do
			rm -f "$ready"
			t0=$(uptime_cs)
			$bin --persistent -C "$conf" > "$VM_STATE/compare.log" 2>&1 < /dev/null &
			pid=$!
			until [ -e "$ready" ]; do
				[ $(($(uptime_cs) - t0)) -lt 20000 ] || { not_ok "$SCENARIO" "$bin $n: not ready"; exit 0; }
				sleep 0.01
			done
			t1=$(uptime_cs)
			note "compare startup-$n $round $bin ms=$(((t1 - t0) * 10)) hwm_kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")"
			kill -TERM $pid
			wait $pid
			wait_for 60 no_ctrls || { not_ok "$SCENARIO" "controllers left after $bin"; exit 0; }
		done
	done
done
ok "$SCENARIO"
