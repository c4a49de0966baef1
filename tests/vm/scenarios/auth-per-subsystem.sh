#!/bin/sh
# boot: shared
# timeout: 120
#
# Keys per subsystem from nvme-fabrics.conf. One discovery controller names two subsystems:
# LOCKED admits our host only with its key, OPEN admits any host. The command line's key for
# every connection is wrong; nvme-fabrics.conf's [Subsystem] LOCKED gives the right one (and a
# path of its own at a second port). The log's LOCKED entry must be connected with the
# [Subsystem] key, not the command line's, and OPEN with the command line's (which it does not
# check): both are connected, each once per path. (nvmet keeps keys per host NQN, so two
# subsystems that check two different keys for one host cannot be built; the wrong global key
# stands in for "another key".)

LOCKED=nqn.2024-01.io.example:auth-locked
OPEN=nqn.2024-01.io.example:auth-open2
ETC=$VM_STATE/etc-auth-sub
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
paths() { ctrl_count "cntrltype=io state=live subsysnqn=$1 .*trsvcid=$2"; }
up() { [ "$(paths "$LOCKED" 4420)" -eq 1 ] && [ "$(paths "$LOCKED" 4421)" -eq 1 ] && [ "$(paths "$OPEN" 4420)" -eq 1 ]; }

tgt_subsys "$LOCKED" 16M && tgt_subsys "$OPEN" 16M && tgt_port 1 tcp 127.0.0.1 4420 &&
	tgt_port 2 tcp 127.0.0.1 4421 && tgt_link 1 "$LOCKED" && tgt_link 1 "$OPEN" && tgt_link 2 "$LOCKED" &&
	tgt_auth "$LOCKED" "$(cat /etc/nvme/hostnqn)" "$AUTH_SUB_KEY" || fail "cannot set up the target"
rm -rf "$ETC" && mkdir -p "$ETC" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "-t tcp -a 127.0.0.1 -s 4420" > "$ETC/discovery.conf" &&
	printf '[Subsystem]\nnqn = %s\nkxchap-secret = %s\ncontroller = transport=tcp;traddr=127.0.0.1;trsvcid=4421\n' \
		"$LOCKED" "$AUTH_SUB_KEY" > "$ETC/nvme-fabrics.conf" || fail "cannot write the configuration"
start_monitor -v -A -p --etc-dir "$ETC" --dhchap-secret "$AUTH_WRONG"
wait_for 30 up || fail "not every path is up: $(ctrl_list | tr '\n' ';')"
sleep 2
up || fail "a path went away or was connected twice: $(ctrl_list | tr '\n' ';')"
monitor_logged "authentication failed" && fail "an authentication failed: $(grep "authentication failed" "$MON_LOG" | head -n 1)"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC"
cat "$MON_LOG" >> "$VM_STATE/auth-all.log"
ok "$SCENARIO"
