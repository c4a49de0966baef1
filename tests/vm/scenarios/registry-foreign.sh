#!/bin/sh
# boot: shared
# timeout: 90
#
# A persistent discovery controller registered to another orchestrator (owner "stas") at the very
# address the daemon is told to use: the daemon makes its own beside it (never reads the other's
# log, not even on its AEN), connects through its own, and at SIGTERM deletes only its own; the
# other controller and its registry entry are untouched.

SUB=nqn.2024-01.io.example:reg-foreign
SUB2=nqn.2024-01.io.example:reg-foreign2
REG=/run/nvme/registry
dcs() { ctrl_count "cntrltype=discovery .*trsvcid=4420"; }
two_dcs() { [ "$(dcs)" -eq 2 ]; }
io_of() { [ -n "$(ctrl_find "cntrltype=io .*subsysnqn=$1 ")" ]; }

fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

tgt_subsys "$SUB" 16M && tgt_subsys "$SUB2" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB" ||
	{ not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
theirs=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID")
ctrl_live "$theirs" || wait_for 5 ctrl_live "$theirs" || fail "cannot make the other orchestrator's controller"
mkdir -p "$REG/$theirs" && echo stas > "$REG/$theirs/owner" && cat /sys/kernel/uevent_seqnum > "$REG/$theirs/seqnum"
stamp=$(cat "$REG/$theirs/seqnum")

start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 io_of "$SUB" || fail "not connected: $(ctrl_list | tr "\n" ";")"
two_dcs || fail "expected our own discovery controller beside $theirs: $(ctrl_list | tr "\n" ";")"
ours=$(ctrl_list | grep "cntrltype=discovery .*trsvcid=4420" | cut -d' ' -f1 | grep -vx "$theirs")
[ "$(cat "$REG/$ours/owner" 2>/dev/null)" = nvme-monitor ] || fail "our $ours is not registered as ours"
monitor_logged "registered to stas" || fail "no log line about the other owner's $theirs"

# An AEN on both controllers: ours is read, theirs is not.
tgt_link 2 "$SUB2"
wait_for 15 io_of "$SUB2" || fail "$SUB2 not connected after the AEN"
if monitor_logged "event: aen $theirs "; then
	monitor_logged "$theirs is registered to stas: its log is not ours to read" ||
		fail "the AEN of $theirs was not refused: $(grep "$theirs" "$MON_LOG" | tail -3 | tr "\n" ";")"
else
	note "no AEN arrived on $theirs: only the startup choice is shown"
fi
if grep -qE "nvme${theirs#nvme}: discovery log genctr|discovery at .*\($theirs\)" "$MON_LOG"; then
	fail "read the log of $theirs"
fi

stop_monitor
if ! ctrl_live "$theirs"; then
	not_ok "$SCENARIO" "the other orchestrator's $theirs did not survive: $(ctrl_list | tr "\n" ";")"
elif [ "$(cat "$REG/$theirs/owner" 2>/dev/null)" != stas ] || [ "$(cat "$REG/$theirs/seqnum" 2>/dev/null)" != "$stamp" ]; then
	not_ok "$SCENARIO" "the entry of $theirs was changed: $(cat "$REG/$theirs/owner" "$REG/$theirs/seqnum" 2>&1 | tr "\n" " ")"
elif [ -e "/sys/class/nvme/$ours" ] || [ -e "$REG/$ours" ]; then
	not_ok "$SCENARIO" "our $ours or its entry is left after SIGTERM"
else
	ok "$SCENARIO"
fi
