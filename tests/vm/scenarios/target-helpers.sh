#!/bin/sh
# boot: shared
# daemon: no
# timeout: 60
#
# The harness's own check: lib.sh builds a loop, TCP and FC target that nvme-cli connects to, and
# tgt_reset takes everything down so completely that the same setup works again, as the
# next scenario of a shared boot needs.

SUB=nqn.2024-01.io.example:helpers

fail() {
	not_ok "$SCENARIO" "$*"
	exit 0
}
io_live() { [ "$(ctrl_count "cntrltype=io state=live")" -eq "$1" ]; }
empty() { [ -z "$(ls "$NVMET/ports")$(ls "$NVMET/subsystems")" ] && [ ! -e "$FCLOOP_PORTS" ]; }

setup() {
	tgt_subsys "$SUB" 16M && tgt_port 1 loop && tgt_link 1 "$SUB" &&
		tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$SUB" &&
		fc_setup && tgt_port 3 fc "$FC_TRADDR" && tgt_link 3 "$SUB" && fc_remote_port
}

for round in 1 2; do
	setup || fail "round $round: target setup failed"
	nvme connect-all -t loop > /dev/null || fail "round $round: connect-all over loop failed"
	nvme connect-all -t tcp -a 127.0.0.1 -s 4420 > /dev/null || fail "round $round: connect-all over tcp failed"
	nvme connect-all -t fc -a "$FC_TRADDR" -w "$FC_HOST_TRADDR" > /dev/null ||
		fail "round $round: connect-all over fc failed"
	wait_for 10 io_live 3 || fail "round $round: expected 3 live I/O controllers: $(ctrl_list)"
	tgt_reset
	no_ctrls || fail "round $round: controllers left after tgt_reset: $(ctrl_list)"
	empty || fail "round $round: target left after tgt_reset: $(ls "$NVMET/ports" "$NVMET/subsystems" | tr '\n' ' ')"
done
ok "$SCENARIO"
