#!/bin/sh
# TEST ONLY, never in a real image: make the initramfs its own NVMe/TCP storage array. The
# kernel's nvmet exports the virtio disk (holding the ext4 root file system) as namespace 1 of
# $SUBNQN on 127.0.0.1:4420 (or nvmet_boot.traddr= from the kernel command line: 0.0.0.0 for the
# NBFT boot, whose HFI address is not there yet), before nvme-monitor starts; nvme-monitor then
# finds the root the way it would on a SAN. Run from a dracut hook or unit, or an initramfs-tools
# init-premount script.
BB=/usr/lib/nvmet-boot-test/busybox
SUBNQN=nqn.2024-01.io.example:bootroot
C=/sys/kernel/config/nvmet
TRADDR=$(sed -n 's/.*nvmet_boot\.traddr=\([^ ]*\).*/\1/p' /proc/cmdline)
TRADDR=${TRADDR:-127.0.0.1}

say() { echo "### target: $*" > /dev/console; }

# Once per boot: an emergency shell may run the hook again.
[ ! -e /run/nvmet-boot-target ] || exit 0
: > /run/nvmet-boot-target

modprobe -q virtio_blk
modprobe -q virtio_net # the NBFT boot's NIC (none in the other boots)
modprobe -q nvmet-tcp || say "modprobe nvmet-tcp failed"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -b /dev/vda ] || say "no /dev/vda"
grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs configfs /sys/kernel/config
"$BB" ip link set lo up

S=$C/subsystems/$SUBNQN
mkdir "$S" "$S/namespaces/1" "$C/ports/1" || say "cannot create nvmet objects"
echo 1 > "$S/attr_allow_any_host"
printf %s /dev/vda > "$S/namespaces/1/device_path"
echo 1 > "$S/namespaces/1/enable"
echo tcp > "$C/ports/1/addr_trtype"
echo ipv4 > "$C/ports/1/addr_adrfam"
echo "$TRADDR" > "$C/ports/1/addr_traddr"
echo 4420 > "$C/ports/1/addr_trsvcid"
ln -s "$S" "$C/ports/1/subsystems/$SUBNQN" || say "cannot link $SUBNQN to port 1"
say "$SUBNQN on tcp $TRADDR:4420 backed by /dev/vda"
