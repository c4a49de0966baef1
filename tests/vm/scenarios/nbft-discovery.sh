#!/bin/sh
# boot: shared
# timeout: 90
#
# An NBFT with a discovery descriptor only (no SSNS, no NQN: the well-known one): the daemon
# reaches the discovery controller from the HFI's interface and address under the NBFT's host
# NQN, and connects the subsystem its log names from the same interface and address, without
# --autoconnect (what the firmware booted from is connected, as connect-all --nbft does).
# The host ID is the table's even where it is not the host NQN's UUID.

SUB=nqn.2024-01.io.example:nbft-disc
DIR=$VM_STATE/nbft-disc
# Not the host NQN's UUID: the host ID must be the table's, not one derived from the NQN.
OTHER_ID=3e0c1f9a-5b7d-4c2e-8f61-9d4a2b7c0e15
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; nbft_if_del nbft0; exit 0; }
io() { ctrl_find "cntrltype=io state=live subsysnqn=$SUB "; }
io_live() { [ -n "$(io)" ]; }

nbft_if nbft0 "$NBFT_MAC1" 10.99.0.1/24 || fail "cannot add the stand-in NIC"
tgt_subsys "$SUB" 16M && tgt_port 1 tcp 10.99.0.1 4420 && tgt_link 1 "$SUB" ||
	fail "cannot set up the target"
nbft_table "$DIR" --hostnqn "$NBFT_HOST" --hostid "$OTHER_ID" --hfi "$NBFT_MAC1,10.99.0.1/24" \
	--discovery "1,nvme+tcp://10.99.0.1:4420/" || fail "mknbft failed"
start_monitor --no-config -v -p --nbft-path "$DIR"
wait_for 20 io_live || fail "the subsystem the log names was not connected: $(ctrl_list | tr '\n' ';')"
c=$(io)
why=$(nbft_ctrl_problem "$c" "$NBFT_HOST" "$OTHER_ID" 10.99.0.1 nbft0)
[ -z "$why" ] || fail "$why"
dc=$(ctrl_find "cntrltype=discovery state=live .*traddr=10.99.0.1,trsvcid=4420")
[ -n "$dc" ] || fail "no persistent discovery controller at 10.99.0.1:4420: $(ctrl_list | tr '\n' ';')"
why=$(nbft_ctrl_problem "$dc" "$NBFT_HOST" "" 10.99.0.1 nbft0)
[ -z "$why" ] || fail "$why"
[ "$(ctrl_count "cntrltype=io")" -eq 1 ] || fail "not exactly one I/O controller: $(ctrl_list | tr '\n' ';')"
stop_monitor
nbft_if_del nbft0
ok "$SCENARIO"
