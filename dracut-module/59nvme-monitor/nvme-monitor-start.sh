#!/bin/sh
# pre-trigger hook (initrd without systemd): start nvme-monitor before udev triggers the coldplug
# events, so the FC HBAs' nvmediscovery events and the NVMe devices the root waits for reach it.
# Sourced by dracut's init; the cleanup hook stops it again before switch-root.

if getargbool 0 rd.nonvmf; then
    info "nvme-monitor: rd.nonvmf given, not starting"
else
    # The fabrics core must be there for /dev/nvme-fabrics; the kernel loads the transport
    # module itself on the first connect.
    modprobe -qa nvme-fabrics nvme-tcp
    # stderr reaches the console only for errors before logging starts (a bad argument).
    nvme-monitor --persistent --autoconnect --keep --cmdline --log kmsg < /dev/null > /dev/null 2> /dev/console &
    echo $! > /run/nvme-monitor-initrd.pid
    info "nvme-monitor: started as pid $!"
fi
