#!/bin/sh
# boot: shared
# timeout: 120
#
# nvme-cli 3's nvme-fabrics.conf (a main file and a drop-in, --etc-dir pointing at a scratch
# /etc/nvme), read back from sysfs as the kernel took it:
# - [Host] hostnqn wins over /etc/nvme/hostnqn, for every controller;
# - the [Discovery Controller] is kept (-p) with [Discovery Controller Defaults]' ctrl-loss-tmo,
#   and the subsystem its log names is connected;
# - a [Subsystem] is connected directly, no discovery controller at its port: ctrl-loss-tmo from
#   its controller line over the I/O defaults, reconnect-delay from its section over the I/O
#   defaults, nr-io-queues from the I/O defaults;
# - a drop-in's [Subsystem] with `ctrl-loss-tmo =` gets the kernel default (600), not the I/O
#   defaults' value, and reconnect-delay from the I/O defaults;
# - a bad line is FILE:LINE and skipped, the rest still applies;
# (the kernel shows ctrl_loss_tmo rounded up to a multiple of reconnect_delay: the values are
# chosen as multiples);
# - a directly connected subsystem deleted behind our back is connected again;
# - SIGHUP with the drop-in gone: its subsystem is no longer kept, and not disconnected.

S=nqn.2024-01.io.example:fconf
ETC=$VM_STATE/etc-fconf
HOST=nqn.2014-08.org.nvmexpress:uuid:f0f0f0f0-0000-4000-8000-00000000fc0f
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
ctrl_of() { ctrl_find "cntrltype=io .*subsysnqn=$1 "; }
io_live() { c=$(ctrl_of "$1") && [ -n "$c" ] && ctrl_live "$c"; }
attr() { cat "/sys/class/nvme/$1/$2" 2>/dev/null; }
# expect CTRL ATTR VALUE WHAT
expect() {
	[ "$(attr "$1" "$2")" = "$3" ] || fail "$4: $1 $2 is '$(attr "$1" "$2")', expected '$3'"
}

rm -rf "$ETC" && mkdir -p "$ETC/nvme-fabrics.conf.d" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/"
[ "$(cat "$ETC/hostnqn")" != "$HOST" ] || fail "the VM's host NQN is the test's"
cat > "$ETC/nvme-fabrics.conf" <<EOF
[Host]
hostnqn = $HOST

[Discovery Controller Defaults]
ctrl-loss-tmo = 40

[I/O Controller Defaults]
ctrl-loss-tmo = 120
reconnect-delay = 5
nr-io-queues = 1

[Discovery Controller]
controller = transport=tcp;traddr=127.0.0.1;trsvcid=4420

[Subsystem]
nqn = ${S}-direct
reconnect-delay = 7
controller = transport=tcp;traddr=127.0.0.1;trsvcid=4421;ctrl-loss-tmo=210
EOF
cat > "$ETC/nvme-fabrics.conf.d/10-more.conf" <<EOF
[Subsystem]
nqn = ${S}-direct2
ctrl-loss-tmo =
queue-size = many
controller = transport=tcp;traddr=127.0.0.1;trsvcid=4421
EOF
for n in logged direct direct2; do tgt_subsys "$S-$n" 16M || fail "cannot make $S-$n"; done
tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "$S-logged" &&
	tgt_port 3 tcp 127.0.0.1 4421 && tgt_link 3 "$S-direct" && tgt_link 3 "$S-direct2" ||
	fail "cannot set up the target"
start_monitor --persistent --autoconnect --etc-dir "$ETC" -v
for n in logged direct direct2; do
	wait_for 20 io_live "$S-$n" || fail "$S-$n not connected: $(ctrl_list | tr "\n" ";")"
done
dc=$(ctrl_find "cntrltype=discovery .*trsvcid=4420")
[ -n "$dc" ] || fail "no persistent discovery controller at 4420: $(ctrl_list | tr "\n" ";")"
[ -z "$(ctrl_find "cntrltype=discovery .*trsvcid=4421")" ] ||
	fail "a discovery controller at the direct subsystems' port 4421"
monitor_logged "10-more.conf:4: .*queue-size" || fail "no FILE:LINE warning for the bad queue-size: $(grep -i queue "$MON_LOG")"

for c in "$dc" "$(ctrl_of "$S-logged")" "$(ctrl_of "$S-direct")" "$(ctrl_of "$S-direct2")"; do
	expect "$c" hostnqn "$HOST" "[Host] hostnqn over $ETC/hostnqn"
done
expect "$dc" ctrl_loss_tmo 40 "[Discovery Controller Defaults]"
d=$(ctrl_of "$S-direct")
expect "$d" ctrl_loss_tmo 210 "the controller line over the I/O defaults"
expect "$d" reconnect_delay 7 "the [Subsystem] section over the I/O defaults"
expect "$d" queue_count 2 "nr-io-queues = 1 from the I/O defaults (one I/O queue + the admin queue)"
d2=$(ctrl_of "$S-direct2")
expect "$d2" ctrl_loss_tmo 600 "'ctrl-loss-tmo =' resets to the kernel default"
expect "$d2" reconnect_delay 5 "reconnect-delay from the I/O defaults"

# `status` tells the direct subsystems apart from the discovery address at their port.
nvme-monitor status -o json > "$VM_STATE/fconf-status.json" 2>&1 || fail "status: $(tr '\n' ' ' < "$VM_STATE/fconf-status.json")"
flat=$(tr -d '\n' < "$VM_STATE/fconf-status.json" | tr -s ' ')
echo "$flat" | grep -qE "\"subsysnqn\": \"$S-direct\", \"discovery_controller\": null, \"last_discovery\": \{ \"time\": [0-9]+, \"result\": \"ok\", \"error\": null \}, \"next_retry\": null, \"retry_in\": null, \"io_controllers\": \[ \{ \"name\": \"$d\", \"subsysnqn\": \"$S-direct\", \"state\": \"live\" \} \]" ||
	fail "status does not show $S-direct connected directly as $d: $flat"
echo "$flat" | grep -q '"summary": "1 discovery controller, 3 subsystems connected"' || fail "summary: $flat"

# Deleted behind our back: connected again, once (the remove also reruns the other direct
# subsystem, which must not add a controller).
echo 1 > "/sys/class/nvme/$d/delete_controller"
wait_for 20 io_live "$S-direct" || fail "$S-direct not connected again after its delete"
sleep 2
[ "$(ctrl_count "cntrltype=io .*subsysnqn=$S-direct ")" -eq 1 ] || fail "$S-direct connected twice"
[ "$(ctrl_count "cntrltype=io .*subsysnqn=$S-direct2 ")" -eq 1 ] || fail "$S-direct2 connected twice"

# The drop-in goes: its subsystem stays up (never disconnected by a reload), and is no longer
# kept: deleted now, it is not connected again.
rm "$ETC/nvme-fabrics.conf.d/10-more.conf"
kill -HUP "$MON_PID"
wait_for 10 monitor_logged "$S-direct2 at .* is no longer in the configuration" || fail "the reload did not drop $S-direct2"
io_live "$S-direct2" || fail "the reload disconnected $S-direct2"
echo 1 > "/sys/class/nvme/$(ctrl_of "$S-direct2")/delete_controller"
sleep 3
[ -z "$(ctrl_of "$S-direct2")" ] || fail "$S-direct2 was connected again after it left the configuration"
io_live "$S-direct" || fail "$S-direct went with the drop-in"
stop_monitor
if io_live "$S-direct" && io_live "$S-logged" && [ -z "$(ctrl_find "cntrltype=discovery")" ]; then
	ok "$SCENARIO"
else
	not_ok "$SCENARIO" "after exit: $(ctrl_list | tr "\n" ";")"
fi
delete_all_ctrls
rm -rf "$ETC"
