#!/bin/sh
# boot: own
# default: no
# timeout: 1500
#
# Profiling, not a test: where a `--once` run's time goes (issue 15). Needs the host's strace and
# perf in the initramfs: VM_JOBS=1 VM_EXTRA_BINS="strace perf" tests/vm/run profile-connect.
# Over loop: a rescan with 64 subsystems connected (ours and nvme connect-all), then a connect of
# 256 (ours and bench-floor): syscall counts (strace -c), sysfs reads per attribute, the time in
# the fabrics writes (strace -T), and a perf profile of each. Prints "# profile ..." lines only.

SUB=nqn.2024-01.io.example:prof-c
command -v strace > /dev/null && command -v perf > /dev/null || {
	not_ok "$SCENARIO" "strace and perf are not in the initramfs (VM_EXTRA_BINS)"
	exit 0
}
mount -t debugfs none /sys/kernel/debug 2> /dev/null
echo -1 > /proc/sys/kernel/perf_event_paranoid
echo 0 > /proc/sys/kernel/kptr_restrict

subsystems() {
	local i=1
	while [ $i -le "$1" ]; do
		tgt_subsys "$SUB$i" 16M || return 1
		tgt_link 1 "$SUB$i" || return 1
		i=$((i + 1))
	done
}
# profile NAME CMD...: timings, syscall summary, sysfs attributes read, fabrics write times, perf.
profile() {
	local name=$1 out=$VM_STATE/prof-$1
	shift
	note "profile $name wall: $(bench-rusage "$@")"
	strace -f -c -o "$out.c" "$@" > /dev/null 2>&1
	sed "s/^/# profile $name strace-c: /" "$out.c" | head -n 25
	strace -f -T -e trace=open,openat,write,ioctl,read,close,newfstatat,statx,getdents64 -o "$out.t" "$@" > /dev/null 2>&1
	awk -v n="$name" '/open(at)?\(/ { p = $0; sub(/.*open(at)?\([^"]*"/, "", p); sub(/".*/, "", p)
			gsub(/nvme[0-9]+/, "nvmeN", p); c[p]++ }
		END { for (p in c) print "# profile " n " open: " c[p], p }' "$out.t" | sort -t: -k2 -rn | head -n 30
	awk -v n="$name" '/nvme-fabrics/ && /openat/ { fd = $NF; sub(/<.*/, "", fd) }
		/^[0-9]+ +write\(/ { t = $NF; gsub(/[<>]/, "", t); if ($0 ~ /nqn=/) { w++; tw += t } }
		/ioctl\(/ { t = $NF; gsub(/[<>]/, "", t); io++; ti += t }
		END { printf "# profile %s fabrics writes %d in %.3f s, ioctls %d in %.3f s\n", n, w, tw, io, ti }' "$out.t"
	perf record -q -F 999 -g -o "$out.perf" "$@" > /dev/null 2>&1
	perf report -q -i "$out.perf" --stdio --no-children --sort dso,sym -g none --percent-limit 0.7 2> /dev/null |
		grep -v '^$' | head -n 45 | sed "s/^/# profile $name perf: /"
	perf report -q -i "$out.perf" --stdio --no-children --sort dso -g none 2> /dev/null |
		grep -v '^$' | head -n 8 | sed "s/^/# profile $name perf-dso: /"
}

tgt_port 1 loop || { not_ok "$SCENARIO" "no loop port"; exit 0; }
subsystems 64 || { not_ok "$SCENARIO" "cannot make 64 subsystems"; exit 0; }
nvme-monitor --once --autoconnect --no-config -t loop > /dev/null 2>&1
note "profile connected: $(ctrl_count "cntrltype=io state=live") live"
profile rescan-ours nvme-monitor --once --autoconnect --no-config -t loop
profile rescan-cli nvme connect-all -t loop
note "profile after rescans: $(ctrl_count) controllers"
wait_for 300 delete_parallel || note "profile: controllers left: $(ctrl_count)"
i=65
while [ $i -le 256 ]; do
	tgt_subsys "$SUB$i" 16M && tgt_link 1 "$SUB$i" || break
	i=$((i + 1))
done
# One connect of 256 per tool and tracer: the rest of the time goes into deleting them.
for tool in ours floor; do
	dc=$(fabrics_connect "nqn=$DISC_NQN,transport=loop,hostnqn=$HOSTNQN,hostid=$HOSTID")
	nvme-monitor --once --autoconnect --no-config --dry-run -t loop 2>&1 |
		sed -n "s/.*: would write '\(.*\)'\$/\1/p" > "$VM_STATE/opts"
	echo 1 > "/sys/class/nvme/$dc/delete_controller"
	wait_for 30 no_ctrls
	note "profile floor options: $(wc -l < "$VM_STATE/opts")"
	for pass in wall strace-c strace-t perf; do
		if [ $tool = ours ]; then
			set -- nvme-monitor --once --autoconnect --no-config -t loop
		else
			set -- bench-floor "$VM_STATE/opts"
		fi
		case $pass in
		wall) note "profile connect-$tool wall: $(bench-rusage "$@")" ;;
		strace-c)
			strace -f -c -o "$VM_STATE/c" "$@" > /dev/null 2>&1
			sed "s/^/# profile connect-$tool strace-c: /" "$VM_STATE/c" | head -n 25
			;;
		strace-t)
			strace -f -T -e trace=open,openat -o "$VM_STATE/t" "$@" > /dev/null 2>&1
			awk -v n="connect-$tool" '/open(at)?\(/ { p = $0; sub(/.*open(at)?\([^"]*"/, "", p); sub(/".*/, "", p)
					gsub(/nvme[0-9]+/, "nvmeN", p); c[p]++ }
				END { for (p in c) print "# profile " n " open: " c[p], p }' "$VM_STATE/t" | sort -t: -k2 -rn | head -n 30
			;;
		perf)
			perf record -q -F 999 -g -o "$VM_STATE/p" "$@" > /dev/null 2>&1
			perf report -q -i "$VM_STATE/p" --stdio --no-children --sort dso,sym -g none --percent-limit 0.7 2> /dev/null |
				grep -v '^$' | head -n 45 | sed "s/^/# profile connect-$tool perf: /"
			perf report -q -i "$VM_STATE/p" --stdio --no-children --sort dso -g none 2> /dev/null |
				grep -v '^$' | head -n 8 | sed "s/^/# profile connect-$tool perf-dso: /"
			;;
		esac
		wait_for 600 delete_parallel || note "profile: controllers left: $(ctrl_count)"
	done
done
ok "$SCENARIO"
