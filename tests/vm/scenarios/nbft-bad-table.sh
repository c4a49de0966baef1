#!/bin/sh
# boot: shared
# timeout: 90
#
# A corrupt NBFT (an SSNS whose subsystem NQN points past the end of the table) beside a good
# discovery.conf: the daemon names the file and the field it refuses, connects nothing from that
# table, and the discovery.conf address is discovered and its subsystem connected as always;
# `--once` exits 0 (the table is the firmware's problem, logged as an error, not a failed path).
# A table whose byte sum is wrong is refused the same way.

SUB=nqn.2024-01.io.example:nbft-bad
BOOT=nqn.2024-01.io.example:nbft-bad-boot
DIR=$VM_STATE/nbft-bad
ETC=$VM_STATE/etc-nbft-bad
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; nbft_if_del nbft0; exit 0; }

nbft_if nbft0 "$NBFT_MAC1" 10.99.0.1/24 || fail "cannot add the stand-in NIC"
tgt_subsys "$SUB" 16M && tgt_port 1 tcp 127.0.0.1 4420 && tgt_link 1 "$SUB" &&
	tgt_subsys "$BOOT" 16M && tgt_port 2 tcp 10.99.0.1 4420 && tgt_link 2 "$BOOT" ||
	fail "cannot set up the target"
rm -rf "$ETC" && mkdir -p "$ETC" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "-t tcp -a 127.0.0.1 -s 4420" > "$ETC/discovery.conf" || fail "cannot write discovery.conf"
for bad in ssns-nqn-offset checksum; do
	nbft_table "$DIR" --hostnqn "$NBFT_HOST" --hfi "$NBFT_MAC1,10.99.0.1/24" \
		--ssns "1,10.99.0.1,4420,$BOOT" --bad "$bad" || fail "mknbft --bad $bad failed"
	: > "$MON_LOG"
	timeout 60 nvme-monitor --once -A -v --etc-dir "$ETC" --nbft-path "$DIR" >> "$MON_LOG" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || fail "--bad $bad: --once exited $rc"
	monitor_logged "error: .*$DIR/NBFT: table refused: .*" || fail "--bad $bad: no error naming the table"
	case $bad in
	ssns-nqn-offset) field="SSNS descriptor 1: subsystem NQN: " ;;
	checksum) field="header: checksum: " ;;
	esac
	monitor_logged "table refused: $field" || fail "--bad $bad: the error does not name the field ($field)"
	note "--bad $bad: $(grep "table refused" "$MON_LOG" | head -n 1)"
	[ "$(ctrl_count "cntrltype=io state=live subsysnqn=$SUB ")" -eq 1 ] ||
		fail "--bad $bad: the discovery.conf subsystem was not connected: $(ctrl_list | tr '\n' ';')"
	[ "$(ctrl_count "subsysnqn=$BOOT ")" -eq 0 ] || fail "--bad $bad: something was connected from the refused table"
	wait_for 20 delete_all_ctrls || fail "cannot delete the controllers"
done
monitor_logged "table refused: .*(checksum|sum)" || fail "the checksum error does not say checksum"
nbft_if_del nbft0
ok "$SCENARIO"
