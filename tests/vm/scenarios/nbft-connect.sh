#!/bin/sh
# boot: own
# timeout: 90
# nbft: --hostnqn nqn.2014-08.org.nvmexpress:uuid:6c0fb4e5-0d2a-4b0e-9d3e-2f1a7c5b9e01 --hostid 6c0fb4e5-0d2a-4b0e-9d3e-2f1a7c5b9e01 --hfi 52:54:00:4e:42:01,10.99.0.1/24 --ssns 1,10.99.0.1,4420,nqn.2024-01.io.example:nbft-connect,hdgst
#
# The firmware's table as a real boot has it: qemu puts the "# nbft:" table among the guest's ACPI
# tables, so the kernel shows it at /sys/firmware/acpi/tables/NBFT, and the daemon reads it from
# there with no option at all. The SSNS's subsystem is connected once, under the table's host NQN
# and host ID (not the host's /etc/nvme ones), from the interface whose MAC is the HFI's
# (host_iface; the interface is deliberately not named like an NBFT one) and the HFI's address.
# `nbft show` reads the same file. (The values here are lib.sh's NBFT_HOST, NBFT_HOSTID and
# NBFT_MAC1: a header cannot use variables.)

SUB=nqn.2024-01.io.example:nbft-connect
TABLE=/sys/firmware/acpi/tables/NBFT
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; nbft_if_del eth7; exit 0; }
io() { ctrl_find "cntrltype=io state=live subsysnqn=$SUB "; }
io_live() { [ -n "$(io)" ]; }

[ -r "$TABLE" ] || fail "no $TABLE: qemu's -acpitable did not reach the guest"
nvme-monitor nbft show -o json > "$VM_STATE/nbft-show.json" 2>&1 || fail "nbft show failed: $(cat "$VM_STATE/nbft-show.json")"
grep -q "\"filename\": \"$TABLE\"" "$VM_STATE/nbft-show.json" || fail "nbft show does not read $TABLE"
grep -q "\"subsys_nqn\": \"$SUB\"" "$VM_STATE/nbft-show.json" || fail "nbft show does not list $SUB"
nbft_if eth7 "$NBFT_MAC1" 10.99.0.1/24 || fail "cannot add the stand-in NIC"
tgt_subsys "$SUB" 16M && tgt_port 1 tcp 10.99.0.1 4420 && tgt_link 1 "$SUB" ||
	fail "cannot set up the target"
start_monitor --no-config -v
wait_for 20 io_live || fail "the SSNS's subsystem was not connected: $(ctrl_list | tr '\n' ';')"
c=$(io)
why=$(nbft_ctrl_problem "$c" "$NBFT_HOST" "$NBFT_HOSTID" 10.99.0.1 eth7)
[ -z "$why" ] || fail "$why"
monitor_logged "$TABLE" || fail "the log does not say which table it read"
sleep 2
[ "$(ctrl_count "cntrltype=io")" -eq 1 ] || fail "not exactly one I/O controller: $(ctrl_list | tr '\n' ';')"
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC"
ctrl_live "$c" || fail "SIGTERM took the NBFT's controller $c down"
# --no-nbft: the same table is not read at all.
wait_for 20 delete_all_ctrls || fail "cannot delete the controllers"
: > "$MON_LOG"
timeout 60 nvme-monitor --once --no-nbft --no-config -v >> "$MON_LOG" 2>&1
[ "$(ctrl_count "subsysnqn=$SUB ")" -eq 0 ] || fail "--no-nbft still connected the SSNS"
nbft_if_del eth7
ok "$SCENARIO"
