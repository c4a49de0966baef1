#!/bin/sh
# boot: shared
# timeout: 40
#
# A uevent sent from userspace to the kernel's multicast group reaches every listener, with the
# sender's port id instead of 0. nvme-monitor must drop it ("dropped uevent: ... not the kernel")
# and never act on it: a fake discovery log change AEN for 10.99.99.99 must produce no event.

start_monitor --dry-run -v --no-config
if ! wait_for 10 monitor_listening; then
	stop_monitor
	not_ok "$SCENARIO" "nvme-monitor is not listening to uevents after 10 s (exit status ${MON_RC:-?})"
	exit 0
fi

uevent-send change@/devices/virtual/nvme-fabrics/ctl/nvme9 ACTION=change \
	DEVPATH=/devices/virtual/nvme-fabrics/ctl/nvme9 SUBSYSTEM=nvme NVME_AEN=0x70f002 \
	MAJOR=246 MINOR=9 DEVNAME=nvme9 NVME_TRTYPE=tcp NVME_TRADDR=10.99.99.99 NVME_TRSVCID=4420 \
	NVME_HOST_TRADDR=none NVME_HOST_IFACE=none SEQNUM=999999 > /dev/null

dropped=yes
wait_for 10 monitor_logged 'dropped uevent:.*not the kernel' || dropped=no
running=yes
monitor_running || running=no
stop_monitor

if monitor_logged 'event:.*10\.99\.99\.99'; then
	not_ok "$SCENARIO" "the daemon acted on a uevent from userspace: $(grep -E 'event:.*10\.99\.99\.99' "$MON_LOG" | head -n 1)"
elif [ $dropped = no ]; then
	not_ok "$SCENARIO" "no 'dropped uevent: ... not the kernel' line within 10 s"
elif [ $running = no ]; then
	not_ok "$SCENARIO" "nvme-monitor exited (status $MON_RC) instead of carrying on"
else
	ok "$SCENARIO"
fi
