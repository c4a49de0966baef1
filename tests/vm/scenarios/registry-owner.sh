#!/bin/sh
# boot: shared
# timeout: 90
#
# nvme-cli 3's registry, as the kernel really numbers and removes controllers:
# - every controller the daemon creates (discovery and I/O) has /run/nvme/registry/nvmeN with
#   owner=nvme-monitor and a seqnum from /sys/kernel/uevent_seqnum, 0755/0644;
# - an I/O controller deleted behind the daemon's back loses its entry (remove event, node gone);
# - a stale remove: while the daemon is stopped, our I/O controller is deleted and its number goes
#   to a new controller, registered after the remove; the late remove event must not take the new
#   entry; the new controller's own remove later does;
# - SIGTERM deletes our discovery controller and its entry; the I/O controllers keep theirs.

SUB=nqn.2024-01.io.example:reg-owner
REG=/run/nvme/registry
owner_of() { cat "$REG/$1/owner" 2>/dev/null; }
seq_of() { cat "$REG/$1/seqnum" 2>/dev/null; }
mode_of() { stat -c %a "$1" 2>/dev/null; }
entry_gone() { [ ! -e "$REG/$1" ]; }
dc() { ctrl_find "cntrltype=discovery .*trsvcid=4420"; }
io() { ctrl_find "cntrltype=io .*subsysnqn=$SUB "; }
has_io() { [ -n "$(io)" ]; }

fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

tgt_subsys "$SUB" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 has_io || fail "not connected: $(ctrl_list | tr "\n" ";")"
d=$(dc) i=$(io)
now=$(cat /sys/kernel/uevent_seqnum)
note "discovery $d (owner $(owner_of "$d"), seqnum $(seq_of "$d")), io $i (owner $(owner_of "$i"), seqnum $(seq_of "$i")), uevent_seqnum $now"
for c in "$d" "$i"; do
	[ "$(owner_of "$c")" = nvme-monitor ] || fail "$c: owner is '$(owner_of "$c")'"
	s=$(seq_of "$c")
	case $s in '' | *[!0-9]*) fail "$c: seqnum is '$s'" ;; esac
	[ "$s" -le "$now" ] || fail "$c: seqnum $s is ahead of the kernel's $now"
	[ "$(mode_of "$REG/$c")" = 755 ] && [ "$(mode_of "$REG/$c/owner")" = 644 ] &&
		[ "$(mode_of "$REG/$c/seqnum")" = 644 ] || fail "$c: modes $(ls -la "$REG/$c" | tr "\n" ";")"
done
[ -z "$(ls -A "$REG" | grep '^\.')" ] || fail "hidden temporaries left: $(ls -A "$REG")"

# Deleted behind our back: the entry goes with it.
echo 1 > "/sys/class/nvme/$i/delete_controller"
wait_for 10 entry_gone "$i" || fail "the entry of the deleted $i is still there"
monitor_logged "$i: our registry entry removed" || fail "no log line for the removed entry"

# The stale remove. The daemon reconnects the subsystem on the next log change; make one.
tgt_unlink 2 "$SUB" && tgt_link 2 "$SUB"
wait_for 15 has_io || fail "not reconnected after the log change"
i=$(io)
kill -STOP "$MON_PID"
echo 1 > "/sys/class/nvme/$i/delete_controller"
wait_for 10 sh -c "! test -e /dev/$i"
new=$(fabrics_connect "nqn=$SUB,transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=$HOSTNQN,hostid=$HOSTID,duplicate_connect")
[ "$new" = "$i" ] || { kill -CONT "$MON_PID"; fail "the kernel did not reuse $i (got $new): the scenario proves nothing"; }
# As nvme-cli 3 would register it: after its connect, so its stamp is newer than the old remove.
stamp=$(cat /sys/kernel/uevent_seqnum)
rm -rf "${REG:?}/$new" && mkdir -p "$REG/$new" && echo nvme-monitor > "$REG/$new/owner" && echo "$stamp" > "$REG/$new/seqnum"
kill -CONT "$MON_PID"
wait_for 10 monitor_logged "registry entry kept \(remove seqnum" || fail "the late remove event was not judged: $(tail -5 "$MON_LOG" | tr "\n" ";")"
[ "$(seq_of "$new")" = "$stamp" ] || fail "the late remove of the old $i took the new controller's entry"
echo 1 > "/sys/class/nvme/$new/delete_controller"
wait_for 10 entry_gone "$new" || fail "the new $new's own remove did not clear its entry"

stop_monitor
if ! entry_gone "$d"; then
	not_ok "$SCENARIO" "our deleted discovery controller $d kept its entry"
elif [ -n "$(dc)" ]; then
	not_ok "$SCENARIO" "discovery controller left after SIGTERM"
else
	ok "$SCENARIO"
fi
