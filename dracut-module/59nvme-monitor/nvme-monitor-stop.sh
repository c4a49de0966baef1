#!/bin/sh
# cleanup hook (initrd without systemd): stop nvme-monitor before switch-root. SIGTERM lets it
# finish the discovery that runs and leave (--keep) its discovery controllers, the udev rule mask
# and a current /run/nvme-monitor/state behind; dracut then moves /run into the new root, where
# nvme-monitor.service adopts them. A process left running would pin the old root.

nvme_monitor_stop() {
    local pid i=0
    read -r pid < /run/nvme-monitor-initrd.pid 2> /dev/null || return 0
    rm -f /run/nvme-monitor-initrd.pid
    kill -TERM "$pid" 2> /dev/null || return 0
    # Its own exit path is bounded by one discovery; 30 s is the unit's TimeoutStopSec too.
    while [ -e "/proc/$pid" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2> /dev/null; do
        if [ $i -ge 300 ]; then
            warn "nvme-monitor: pid $pid ignored SIGTERM for 30 s, killing it"
            kill -KILL "$pid" 2> /dev/null
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    wait "$pid" 2> /dev/null
    info "nvme-monitor: stopped"
}
nvme_monitor_stop
