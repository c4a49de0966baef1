#!/bin/sh
# initqueue/online hook: an interface came up. A TCP or RDMA discovery that failed before it was
# up would otherwise only be retried when its backoff runs out; SIGHUP makes nvme-monitor
# discover every configured address now.

if [ -r /run/nvme-monitor-initrd.pid ]; then
    read -r _nvme_monitor_pid < /run/nvme-monitor-initrd.pid && kill -HUP "$_nvme_monitor_pid" 2> /dev/null
    unset _nvme_monitor_pid
elif command -v systemctl > /dev/null; then
    systemctl --no-block reload nvme-monitor-initrd.service 2> /dev/null
fi
:
