#!/bin/sh
# boot: shared
# timeout: 120
#
# An SSNS the firmware marked unavailable, at a port nobody listens on, beside one that works:
# `--once` connects the available one and exits 0, saying the other was marked unavailable. The
# same table without the mark exits 3 (so the 0 is the mark's doing, not a failure overlooked).
# Header and data digests come from the SSNS flags: the working path asks for both.

SUB=nqn.2024-01.io.example:nbft-avail
GONE=nqn.2024-01.io.example:nbft-gone
DIR=$VM_STATE/nbft-unavail
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; nbft_if_del nbft0; exit 0; }
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB ")" -eq 1 ]; }

nbft_if nbft0 "$NBFT_MAC1" 10.99.0.1/24 || fail "cannot add the stand-in NIC"
tgt_subsys "$SUB" 16M && tgt_port 1 tcp 10.99.0.1 4420 && tgt_link 1 "$SUB" ||
	fail "cannot set up the target"
# once_with MARK: run --once over a table whose second SSNS has MARK (empty: none).
once_with() {
	nbft_table "$DIR" --hostnqn "$NBFT_HOST" --hfi "$NBFT_MAC1,10.99.0.1/24" \
		--ssns "1,10.99.0.1,4420,$SUB,hdgst,ddgst" --ssns "1,10.99.0.1,4439,$GONE$1" || fail "mknbft failed"
	: > "$MON_LOG"
	timeout 100 nvme-monitor --once --no-config -v --nbft-path "$DIR" >> "$MON_LOG" 2>&1
}
once_with ,unavailable
rc=$?
[ "$rc" -eq 0 ] || fail "--once exited $rc with the failing SSNS marked unavailable"
io_live || fail "the available SSNS was not connected: $(ctrl_list | tr '\n' ';')"
monitor_logged "SSNS 2 via HFI 1: .*marked unavailable" || fail "the log does not say SSNS 2 is marked unavailable"
# The options the kernel is given, as a dry run prints them (no sysfs attribute shows digests).
wait_for 20 delete_all_ctrls || fail "cannot delete the controllers after the first run"
timeout 60 nvme-monitor --once --dry-run --no-config --nbft-path "$DIR" > "$VM_STATE/nbft-dry" 2>&1
grep "would connect $SUB " "$VM_STATE/nbft-dry" | grep -q "hdr_digest,data_digest" ||
	fail "the dry run does not ask for both digests: $(grep "$SUB" "$VM_STATE/nbft-dry" | tr '\n' ';')"
grep "would connect $SUB " "$VM_STATE/nbft-dry" | grep -q "host_iface=nbft0" ||
	fail "the dry run does not connect from nbft0: $(grep "$SUB" "$VM_STATE/nbft-dry" | tr '\n' ';')"
wait_for 20 delete_all_ctrls || fail "cannot delete the controllers between the two runs"
once_with ""
rc=$?
[ "$rc" -eq 3 ] || fail "--once exited $rc with the same SSNS not marked unavailable (expected 3)"
nbft_if_del nbft0
ok "$SCENARIO"
