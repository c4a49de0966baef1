#!/bin/bash
# dracut module for nvme-monitor: run the daemon in the initramfs so a root (or /usr) file system on
# NVMe over Fabrics is found, and hand its discovery controllers over to the booted system.
#
# In a systemd initrd nvme-monitor-initrd.service runs it; otherwise a pre-trigger hook starts it
# and a cleanup hook stops it. Either way it runs with --keep, so the discovery controllers, the
# udev rule mask and /run/nvme-monitor/state survive switch-root for nvme-monitor.service to adopt.
#
# It replaces dracut's nvmf module (nvme-monitor.conf omits it): both in one image would connect
# the same subsystems twice over, so install() refuses to build such an image.

# nvmf_transport_of MAJ:MIN: the fabrics transport of a block device's controller, if any
# (the way dracut's nvmf module tells: the controller's device links into nvme-fabrics).
nvmf_transport_of() {
    local dev=/sys/dev/block/$1 ctrl trtype
    [[ -L $dev ]] || return 1
    dev=$(readlink -f "$dev")
    [[ -f $dev/partition ]] && dev=${dev%/*}
    for ctrl in "$dev"/device/nvme*; do
        [[ -L $ctrl ]] && [[ $(readlink "$ctrl") == *nvme-fabrics* ]] || continue
        read -r trtype < "$ctrl/transport" && echo "$trtype"
        return 0
    done
    return 1
}

# host_nvmf_transports: the transports the host devices dracut cares about (root, /usr, ...) and
# /etc/nvme/discovery.conf use, one per line.
host_nvmf_transports() {
    local -a _t=()
    record_transport() {
        local t
        t=$(nvmf_transport_of "$1") && _t+=("$t")
        return 0
    }
    for_each_host_dev_and_slaves_all record_transport
    printf '%s\n' "${_t[@]}"
    [[ -f /etc/nvme/discovery.conf ]] &&
        sed -n 's/^[^#]*\(^\|[[:space:]]\)\(--transport[= ]\|-t[= ]*\)\([a-z]*\).*/\3/p' /etc/nvme/discovery.conf
    return 0
}

# nvme_monitor_binary: $NVME_MONITOR when set (an image built with a binary that is not
# installed, as the boot tests do), else nvme-monitor from PATH.
nvme_monitor_binary() {
    if [[ $NVME_MONITOR ]]; then
        [[ -x $NVME_MONITOR ]] && echo "$NVME_MONITOR"
    else
        find_binary nvme-monitor
    fi
}

# called by dracut
check() {
    nvme_monitor_binary > /dev/null || {
        dinfo "dracut module 'nvme-monitor' will not be installed, because nvme-monitor is not found"
        return 1
    }
    # A generic image takes it whenever it is installed; a host-only image only when this host
    # boots from NVMe over Fabrics or configures discovery controllers.
    if [[ $hostonly ]] || [[ $mount_needs ]]; then
        [[ -n $(host_nvmf_transports) ]] || return 255
    fi
    return 0
}

# called by dracut
depends() {
    local need_net=
    if [[ $hostonly ]] || [[ $mount_needs ]]; then
        host_nvmf_transports | grep -qx -e tcp -e rdma && need_net=1
    else
        # A generic image can boot from NVMe/TCP only if it can bring up the network; dracut's
        # network module (package dracut-network) is added when it is there.
        [[ -d $dracutbasedir/modules.d/40network ]] && need_net=1
    fi
    [[ $need_net ]] && echo network
    return 0
}

# called by dracut
installkernel() {
    hostonly='' instmods nvme-fabrics nvme-tcp nvme-fc
    instmods nvme-rdma
    # The FC HBAs with NVMe/FC: all of them in a generic image, those this host has otherwise.
    instmods lpfc qla2xxx
}

# called by dracut
install() {
    if dracut_module_included nvmf; then
        dfatal "nvme-monitor: dracut's nvmf module is in this image too; both would connect the same" \
            "subsystems. Omit one (nvme-monitor.conf omits nvmf unless that is overridden)."
        exit 1
    fi
    inst_binary "$(nvme_monitor_binary)" /usr/sbin/nvme-monitor
    inst_multiple -o /etc/nvme/hostnqn /etc/nvme/hostid /etc/nvme/discovery.conf
    if dracut_module_included systemd; then
        inst_simple "$moddir/nvme-monitor-initrd.service" \
            "$systemdsystemunitdir/nvme-monitor-initrd.service"
        $SYSTEMCTL -q --root "$initdir" enable nvme-monitor-initrd.service
    else
        inst_multiple -o modprobe
        inst_hook pre-trigger 50 "$moddir/nvme-monitor-start.sh"
        inst_hook cleanup 50 "$moddir/nvme-monitor-stop.sh"
    fi
    if dracut_module_included network; then
        # rd.nvmf.discover=tcp,... brings the network up, as with dracut's nvmf module.
        inst_hook cmdline 92 "$moddir/nvme-monitor-neednet.sh"
        # An NBFT's interfaces, written as ifname=/vlan=/ip= before the network module's own
        # cmdline hooks (91 on) parse them.
        inst_hook cmdline 90 "$moddir/nvme-monitor-nbft.sh"
        if dracut_module_included systemd-networkd && ls /sys/firmware/acpi/tables/NBFT* > /dev/null 2>&1; then
            dwarn "nvme-monitor: this host has an NBFT, and the image's network handler is systemd-networkd," \
                "which reads only /proc/cmdline: the NBFT's interfaces will not be brought up in the" \
                "initramfs. Add network-legacy or network-manager to the image for NBFT boots."
        fi
        # Interfaces come up in the initqueue, after the daemon started: a rediscovery right
        # then beats waiting out the retry backoff of a TCP connect that failed before.
        inst_hook initqueue/online 50 "$moddir/nvme-monitor-online.sh"
    fi
    return 0
}
