#!/bin/bash
# TEST ONLY (tests/vm/boot/run): an nvmet target inside the initramfs, exporting the virtio disk
# over NVMe/TCP on 127.0.0.1 before nvme-monitor starts. See tests/vm/boot/target-setup.sh.

check() { return 255; }

depends() { echo nvme-monitor; }

installkernel() {
    hostonly='' instmods virtio_blk virtio_pci configfs nvmet nvmet-tcp ext4
}

install() {
    inst_simple "$NVMET_BOOT_TEST_BUSYBOX" /usr/lib/nvmet-boot-test/busybox
    inst_multiple modprobe mkdir ln sleep grep mount sed
    inst_simple "$NVMET_BOOT_TEST_DIR/target-setup.sh" /usr/lib/nvmet-boot-test/target-setup.sh
    if dracut_module_included systemd; then
        inst_simple "$moddir/nvmet-boot-target.service" "$systemdsystemunitdir/nvmet-boot-target.service"
        $SYSTEMCTL -q --root "$initdir" enable nvmet-boot-target.service
    else
        # Before the nvme-monitor start hook (pre-trigger 50).
        inst_hook pre-trigger 10 "$moddir/nvmet-boot-target.sh"
    fi
}
