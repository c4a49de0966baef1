#!/bin/sh
# boot: shared
# timeout: 90
#
# nvme-cli 3's exclusion list, read while running (--etc-dir points at a scratch /etc/nvme):
# - a subsystem excluded in exclusions.conf is in the discovery log but never connected, with one
#   info line naming file:line;
# - a drop-in added while running takes effect on the next discovery (an AEN);
# - a drop-in entry with an unknown key excludes nothing (and says so);
# - the exclusion removed: the next discovery connects the subsystem;
# - a discovery.conf line whose address is excluded gets no discovery controller (an address on
#   our command line is an explicit order and is not checked, but what its log names is).

S=nqn.2024-01.io.example:excl
ETC=$VM_STATE/etc-excl
io_of() { [ -n "$(ctrl_find "cntrltype=io .*subsysnqn=$1 ")" ]; }
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

rm -rf "$ETC" && mkdir -p "$ETC/exclusions.conf.d" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/"
# Line 5 names the command line's own discovery controller: an explicit order, not checked.
printf '[exclusions]\n# the array we must not touch\nexclusion = nqn=%s2\nexclusion = transport=tcp;trsvcid=4426\nexclusion = trsvcid=4420;nqn=nqn.2014-08.org.nvmexpress.discovery\n' "$S" > "$ETC/exclusions.conf"
echo "--transport=tcp --traddr=127.0.0.1 --trsvcid=4426" > "$ETC/discovery.conf"
for i in 1 2 3 4 5; do tgt_subsys "$S$i" 16M || fail "cannot make $S$i"; done
tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${S}1" && tgt_link 2 "${S}2" &&
	tgt_port 6 tcp 127.0.0.1 4426 && tgt_link 6 "${S}5" || fail "cannot set up the target"
start_monitor --persistent --autoconnect --etc-dir "$ETC" -v -t tcp -a 127.0.0.1 -s 4420
wait_for 15 io_of "${S}1" || fail "${S}1 not connected: $(ctrl_list | tr "\n" ";")"
wait_for 5 monitor_logged "${S}2 at .*excluded by $ETC/exclusions.conf:3" || fail "no line naming the exclusion: $(grep "${S}2" "$MON_LOG" | tail -2)"
io_of "${S}2" && fail "excluded ${S}2 was connected"
wait_for 5 monitor_logged "at tcp traddr=127.0.0.1,trsvcid=4426: excluded by $ETC/exclusions.conf:4" ||
	fail "no line naming the exclusion of the discovery.conf line: $(grep 4426 "$MON_LOG" | tail -2)"
[ -z "$(ctrl_find "trsvcid=4426")" ] || fail "a controller at the excluded 4426: $(ctrl_list | tr "\n" ";")"
[ -n "$(ctrl_find "cntrltype=discovery .*trsvcid=4420")" ] || fail "the command line's address was excluded: $(ctrl_list | tr "\n" ";")"
monitor_logged "exclusions.conf:5" && fail "the command line's address was checked: $(grep "exclusions.conf:5" "$MON_LOG" | head -1)"

# Added while running: a drop-in excludes ${S}3, then the log changes.
printf '[exclusions]\nexclusion = transport=tcp;traddr=::ffff:127.0.0.1;nqn=%s3\n' "$S" > "$ETC/exclusions.conf.d/50-late.conf"
# An entry with an unknown key excludes nothing.
printf '[exclusions]\nexclusion = nqn=%s4;colour=blue\n' "$S" > "$ETC/exclusions.conf.d/60-typo.conf"
tgt_link 2 "${S}3" && tgt_link 2 "${S}4"
wait_for 15 io_of "${S}4" || fail "${S}4 (an entry with an unknown key) was not connected"
wait_for 5 monitor_logged "${S}3 at .*excluded by $ETC/exclusions.conf.d/50-late.conf:2" || fail "the drop-in added while running was not applied"
io_of "${S}3" && fail "${S}3 excluded by the late drop-in was connected"
monitor_logged "60-typo.conf:2: .*colour" || fail "no warning about the unknown key"

# The exclusion goes: the next log change connects ${S}2.
printf '[exclusions]\n' > "$ETC/exclusions.conf"
tgt_unlink 2 "${S}4" && tgt_link 2 "${S}4"
wait_for 15 io_of "${S}2" || fail "${S}2 not connected once its exclusion was removed"
stop_monitor
if io_of "${S}3"; then
	not_ok "$SCENARIO" "${S}3 connected in the end"
else
	ok "$SCENARIO"
fi
rm -rf "$ETC"
