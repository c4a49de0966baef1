#!/bin/sh
# boot: shared
# timeout: 120
#
# Truncated, garbage, future-version and hand-edited state files: each is a warning and a rebuild from
# sysfs, never a crash, and never the deletion of a discovery controller that is not ours (here a
# foreign one that the bad file names or points near).

SUB=nqn.2024-01.io.example:corrupt
STATE=/run/nvme-monitor
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"
foreign=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID")
wait_for 10 ctrl_live "$foreign" || fail "cannot create the foreign discovery controller"
cntlid=$(cat "/sys/class/nvme/$foreign/cntlid")
good="dc $foreign transport=tcp traddr=127.0.0.1 trsvcid=4420 host_traddr= host_iface= hostnqn= subsysnqn=$DISC_NQN cntlid=$cntlid origin=config"

for kind in truncated garbage future edited; do
	rm -rf "$STATE"; mkdir -p "$STATE"
	case $kind in
	truncated) printf 'nvme-monitor-state 1\n%s\n' "$good" > "$STATE/state" ;;  # no end line
	garbage) head -c 3000 /dev/urandom > "$STATE/state" ;;
	future) printf 'nvme-monitor-state 7\n%s\nend 1\n' "$good" > "$STATE/state" ;;
	edited) printf 'nvme-monitor-state 1\n%s\nend 1\n' "$(echo "$good" | sed "s/cntlid=$cntlid/cntlid=$((cntlid + 100))/")" > "$STATE/state" ;;
	esac
	start_monitor --persistent --no-config -v -t tcp -a 127.0.0.1 -s 4420
	wait_for 15 monitor_logged "startup discovery done" || fail "$kind: startup pass did not finish"
	monitor_logged "warning: .*(state|adopting)" || fail "$kind: no warning about the state file"
	monitor_logged "adopted discovery controller $foreign" && fail "$kind: adopted the foreign $foreign"
	stop_monitor
	[ "$MON_RC" -eq 0 ] || fail "$kind: exit status $MON_RC"
	ctrl_live "$foreign" || fail "$kind: the foreign $foreign was deleted"
done
ok "$SCENARIO"
