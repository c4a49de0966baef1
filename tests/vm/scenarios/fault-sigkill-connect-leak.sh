#!/bin/sh
# boot: shared
# timeout: 60
#
# Fault matrix: a SIGKILL after the kernel made a new discovery controller and before the daemon
# recorded it (found by fault-sigkill-points, kill 5 of its run 3, which leaked that controller for
# good: the next instance took it as foreign). The daemon now writes a `creating` line (the address
# and the highest controller identity sysfs shows) just before the connect, and the next instance
# adopts the first discovery controller at that address with a greater identity.
# The window is milliseconds and timing-dependent, so this scenario builds its aftermath exactly:
# somebody else's discovery controller made before the intent, the state file as a killed
# instance leaves it (only the `creating` line), then the controller the kernel made for it. The
# restart must adopt the second (real kernfs identities must grow), use the state file, delete
# the adopted one at SIGTERM and leave the other one alone.

SUB=nqn.2024-01.io.example:leak
SD=/run/nvme-monitor
OPTS="nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID"
ino_of() { stat -L -c %i "/sys/class/nvme/$1"; }
newest_ino() {
	local c n=0 i
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c" ] || continue
		i=$(stat -L -c %i "$c")
		[ "$i" -gt "$n" ] && n=$i
	done
	echo "$n"
}

tgt_subsys "$SUB" 8M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
theirs=$(fabrics_connect "$OPTS")
[ -n "$theirs" ] || { not_ok "$SCENARIO" "cannot make the other owner's controller"; exit 0; }
newest=$(newest_ino)
mkdir -p "$SD" && chmod 0700 "$SD"
printf 'nvme-monitor-state 2\ncreating nvme0 transport=tcp traddr=127.0.0.1 trsvcid=4420 host_traddr= host_iface= hostnqn=%s subsysnqn=%s cntlid=0 ino=%s origin=config\nend 0\n' \
	"$HOSTNQN" "$DISC_NQN" "$newest" > "$SD/state"
chmod 0600 "$SD/state"
made=$(fabrics_connect "$OPTS")
note "intent recorded at identity $newest; theirs $theirs ($(ino_of "$theirs")), made as the instance died $made ($(ino_of "$made"))"
if [ "$(ino_of "$made")" -le "$newest" ]; then
	not_ok "$SCENARIO" "the kernel's new controller has no greater identity: the intent cannot work"; exit 0
fi
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
if ! wait_for 20 monitor_logged "adopted discovery controller $made at .*creating it when it stopped"; then
	not_ok "$SCENARIO" "$made was not adopted from the creating line"; stop_monitor; exit 0
fi
wait_for 10 monitor_logged "startup discovery done"
grep -q "^dc $made " "$SD/state" && recorded=yes || recorded=no
stop_monitor
if [ "$recorded" != yes ]; then
	not_ok "$SCENARIO" "the adopted controller is not in the state file"
elif [ -e "/sys/class/nvme/$made" ]; then
	not_ok "$SCENARIO" "$made (the killed instance's) left after SIGTERM: leaked"
elif ! ctrl_live "$theirs"; then
	not_ok "$SCENARIO" "$theirs (made before the intent: not ours) was deleted"
else
	ok "$SCENARIO"
fi
