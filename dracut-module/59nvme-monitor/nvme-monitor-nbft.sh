#!/bin/sh
# cmdline hook: the firmware booted from NVMe/TCP and left its boot table (ACPI NBFT). Bring up
# the network interfaces it used (HFIs) as dracut's nvmf module does, from nvme-monitor's own
# parser instead of `nvme nbft show | jq`: `ifname=nbftN:MAC` (the interface is found by its
# MAC, never by the name the kernel gave it), `vlan=` and the `ip=` line of each HFI, and
# rd.neednet=1. They go to /etc/cmdline.d, which the network module's cmdline hooks (91 on)
# read. rd.nvmf.nonbft (or rd.nonvmf) means "ignore the NBFT", as with nvmf; the daemon reads
# the same table itself and connects its paths once their interface holds its address.

if ! getargbool 0 rd.nonvmf && ! getargbool 0 rd.nvmf.nonbft; then
    for _nbft in /sys/firmware/acpi/tables/NBFT*; do
        [ -e "$_nbft" ] || continue
        # A refused table prints what is wrong (named file, field) and no line for it; a good
        # table beside it still gets its interfaces.
        nvme-monitor nbft cmdline > /etc/cmdline.d/40-nvme-monitor-nbft.conf 2> /dev/console ||
            warn "nvme-monitor: an NBFT was refused; see the error above"
        [ -s /etc/cmdline.d/40-nvme-monitor-nbft.conf ] &&
            info "nvme-monitor: network from the NBFT: $(tr '\n' ' ' < /etc/cmdline.d/40-nvme-monitor-nbft.conf)"
        break
    done
    unset _nbft
fi
