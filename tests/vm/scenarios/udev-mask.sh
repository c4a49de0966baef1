#!/bin/sh
# boot: shared
# timeout: 90
#
# With --autoconnect the daemon masks nvme-cli's 70-nvmf-autoconnect.rules with a /dev/null link:
# kept with --keep, taken over and removed by the next instance; a file it did not create is never
# removed.

STATE=/run/nvme-monitor
LINK=/run/udev/rules.d/70-nvmf-autoconnect.rules
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }
is_mask() { [ "$(readlink "$LINK")" = /dev/null ]; }
ready() { wait_for 10 monitor_logged "startup discovery done"; }

rm -rf "$STATE" "$LINK"
start_monitor --autoconnect --keep --no-config -v
ready || fail "instance 1 did not start"
is_mask || fail "instance 1 did not create the mask link"
stop_monitor
is_mask || fail "--keep: the mask link is gone"
start_monitor --autoconnect --no-config -v
ready || fail "instance 2 did not start"
monitor_logged "taking over the udev rule mask" || fail "instance 2 did not take the link over"
stop_monitor
[ ! -e "$LINK" ] && [ ! -L "$LINK" ] || fail "instance 2 did not remove the link it owned"
# Somebody else's file.
mkdir -p "${LINK%/*}"; echo "# admin's own" > "$LINK"
start_monitor --autoconnect --no-config -v
ready || fail "instance 3 did not start"
stop_monitor
[ "$(cat "$LINK")" = "# admin's own" ] || fail "a file we did not create was changed or removed"
rm -f "$LINK"
ok "$SCENARIO"
