#!/bin/sh
# boot: own
# default: no
# timeout: 150
# daemon: no
#
# Captures real kernel data for the parser tests; run it by name and the harness writes tests/data/:
# - dlog-loop.bin, dlog-tcp.bin: the discovery log page (header and the numrec entries it announces)
#   of a loop and of a TCP discovery controller; 3 subsystems on each port, a referral on the TCP one.
# - vm-uevents.txt: the uevents of nvme discover, connect-all, a persistent discovery controller,
#   discovery log change AENs, rediscover, FC nvmediscovery, controller removal, and one message
#   sent from userspace; "# mark:" lines say what caused them.

SUB=nqn.2024-01.io.example:capture
UEV=$VM_STATE/vm-uevents.txt
DUMP=

fail() {
	[ -z "$DUMP" ] || kill "$DUMP"
	not_ok "$SCENARIO" "$*"
	exit 0
}
mark() { echo "# mark: $*" >> "$UEV"; }
# seen N REGEX: at least N captured uevent lines match.
seen() { [ "$(grep -cE -- "$2" "$UEV")" -ge "$1" ]; }
io_live() { [ "$(ctrl_count 'cntrltype=io state=live')" -eq "$1" ]; }
# le64 FILE OFFSET: the little-endian u64 at OFFSET, in decimal.
le64() { od -A n -t u8 -j "$2" -N 8 "$1" | tr -d ' '; }

# dlog CTRL OUT: the whole discovery log page of CTRL. The header gives numrec; then header and
# entries are read in one command, and the generation counter must not have moved in between.
dlog() {
	local numrec len
	nvme get-log "/dev/$1" --log-id=0x70 --log-len=1024 -b > "$2.hdr" || return
	numrec=$(le64 "$2.hdr" 8)
	len=$(((numrec + 1) * 1024))
	nvme get-log "/dev/$1" --log-id=0x70 --log-len="$len" -b > "$2" || return
	note "$1: genctr $(le64 "$2" 0) numrec $numrec, $(wc -c < "$2") bytes"
	[ "$(wc -c < "$2")" -eq "$len" ] && [ "$(le64 "$2" 0)" = "$(le64 "$2.hdr" 0)" ] &&
		[ "$(le64 "$2" 8)" = "$numrec" ]
}

cat > "$UEV" << EOF
# Real uevents from Linux $(uname -r), captured by tests/vm/scenarios/capture-fixtures.sh.
# One message per line: "sender=<netlink port id, 0 = kernel> len=<bytes> <payload>", the payload
# escaped: \\0 = NUL (each field ends in one), \\\\ = backslash, \\xNN = other non-printable bytes.
# "# mark:" lines say what the scenario did next.
EOF
uevent-dump >> "$UEV" 2>&1 &
DUMP=$!
wait_for 5 grep -q '^# listening' "$UEV" || fail "uevent-dump did not start"

mark "target: 3 subsystems on port 1 (loop, traddr 1) and port 2 (tcp 127.0.0.1:4420), referral on port 2 to tcp 127.0.0.1:8009"
for n in 1 2 3; do tgt_subsys "$SUB$n" 16M || fail "cannot create subsystem $SUB$n"; done
tgt_port 1 loop 1 && tgt_port 2 tcp 127.0.0.1 4420 || fail "cannot create the ports"
for n in 1 2 3; do tgt_link 1 "$SUB$n" && tgt_link 2 "$SUB$n" || fail "cannot link $SUB$n"; done
tgt_referral 2 referral-8009 tcp 127.0.0.1 8009 || fail "cannot create the referral"

mark "nvme discover -t loop (a discovery controller without traddr)"
nvme discover -t loop > /dev/null || fail "nvme discover -t loop failed"

mark "loop discovery controller (traddr=1) via /dev/nvme-fabrics, get-log 0x70, delete"
dc=$(fabrics_connect "nqn=$DISC_NQN,transport=loop,traddr=1,hostnqn=$HOSTNQN,hostid=$HOSTID") ||
	fail "cannot create a loop discovery controller"
wait_for 10 ctrl_live "$dc" || fail "$dc not live"
dlog "$dc" "$VM_STATE/dlog-loop.bin" || fail "cannot read the loop discovery log page"
echo 1 > "/sys/class/nvme/$dc/delete_controller"

mark "nvme connect-all -t loop -a 1 (3 I/O controllers)"
nvme connect-all -t loop -a 1 || fail "nvme connect-all -t loop failed"
wait_for 10 io_live 3 || fail "expected 3 live I/O controllers: $(ctrl_list)"

mark "persistent discovery controller: tcp 127.0.0.1:4420 keep_alive_tmo=30 via /dev/nvme-fabrics, get-log 0x70"
pdc=$(fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=4420,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID") ||
	fail "cannot create the TCP discovery controller"
wait_for 10 ctrl_live "$pdc" || fail "$pdc not live"
dlog "$pdc" "$VM_STATE/dlog-tcp.bin" || fail "cannot read the TCP discovery log page"

mark "link ${SUB}4 to port 2 (discovery log change AEN on $pdc)"
tgt_subsys "${SUB}4" 16M && tgt_link 2 "${SUB}4" || fail "cannot link ${SUB}4"
wait_for 10 seen 1 'NVME_AEN=0x70f002' || fail "no AEN after linking a subsystem"

mark "write 1 to $pdc reset_controller (NVME_EVENT=rediscover)"
echo 1 > "/sys/class/nvme/$pdc/reset_controller"
wait_for 10 seen 1 'NVME_EVENT=rediscover' || fail "no rediscover event after reset"

mark "unlink ${SUB}4 from port 2 (AEN again)"
tgt_unlink 2 "${SUB}4"
wait_for 10 seen 2 'NVME_AEN=0x70f002' || fail "no AEN after unlinking a subsystem"

mark "fcloop target and local port, nvmet port 3 fc $FC_TRADDR, then the remote port (FC_EVENT=nvmediscovery)"
fc_setup && tgt_port 3 fc "$FC_TRADDR" && tgt_link 3 "${SUB}1" && fc_remote_port || fail "cannot set up fcloop"
wait_for 10 seen 1 'FC_EVENT=nvmediscovery' || fail "no nvmediscovery event from fcloop"

mark "write add to /sys/class/fc/fc_udev_device/nvme_discovery (the kernel replays nvmediscovery)"
echo add > /sys/class/fc/fc_udev_device/nvme_discovery
wait_for 10 seen 2 'FC_EVENT=nvmediscovery' || fail "no replayed nvmediscovery event"

mark "uevent-send: a fake AEN for nvme9 sent from userspace to group 1 (sender is not 0)"
uevent-send change@/devices/virtual/nvme-fabrics/ctl/nvme9 ACTION=change \
	DEVPATH=/devices/virtual/nvme-fabrics/ctl/nvme9 SUBSYSTEM=nvme NVME_AEN=0x70f002 DEVNAME=nvme9 \
	NVME_TRTYPE=tcp NVME_TRADDR=10.99.99.99 NVME_TRSVCID=4420 NVME_HOST_TRADDR=none \
	NVME_HOST_IFACE=none SEQNUM=999999 > /dev/null || fail "uevent-send failed"
wait_for 5 seen 1 '^sender=[1-9].*nvme9' || fail "the fake uevent did not arrive"

mark "delete every controller (remove events)"
wait_for 20 delete_all_ctrls || fail "controllers left: $(ctrl_list)"
# Removal uevents are sent before the sysfs entries go; a last message of our own, queued
# behind them on the same socket, says the dump has caught up.
uevent-send end@/ > /dev/null && wait_for 5 seen 1 '^sender=[1-9].* end@/' || fail "dump did not catch up"
kill "$DUMP"
DUMP=
grep -v ' end@/\\0$' "$UEV" > "$UEV.tmp" && mv "$UEV.tmp" "$UEV"

for kind in 'add@/devices/virtual/nvme-fabrics/ctl/' 'NVME_EVENT=connected' 'NVME_TRADDR=\(null\)' \
	'remove@/devices/virtual/nvme-fabrics/ctl/'; do
	seen 1 "^sender=0 .*$kind" || fail "no kernel uevent with $kind captured"
done
[ "$(le64 "$VM_STATE/dlog-loop.bin" 8)" -ge 4 ] || fail "loop page: fewer than 3 subsystems + 1 discovery entry"
[ "$(le64 "$VM_STATE/dlog-tcp.bin" 8)" -ge 5 ] || fail "tcp page: fewer than 3 subsystems + referral + discovery entry"
note "$(grep -c '^sender=' "$UEV") uevents captured"

export_fixture dlog-loop.bin "$VM_STATE/dlog-loop.bin"
export_fixture dlog-tcp.bin "$VM_STATE/dlog-tcp.bin"
export_fixture vm-uevents.txt "$UEV"
ok "$SCENARIO"
