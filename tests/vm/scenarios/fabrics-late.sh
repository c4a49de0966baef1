#!/bin/sh
# boot: own
# timeout: 60
#
# The NVMe host modules are loaded after the daemon started (as in an initramfs where the module
# loads late): it says /dev/nvme-fabrics is absent, keeps listening, and when the device appears
# (its uevent) the pending discovery runs at once; /dev/nvme-fabrics comes with nvme-fabrics, before
# nvme-tcp registers its transport (a connect then fails with EINVAL), so the module's own add
# uevent counts too. Either way it connects at once, retry backoff or not.

SUB=nqn.2024-01.io.example:late
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; exit 0; }

tgt_subsys "${SUB}1" 16M && tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}1" || fail "cannot set up the target"
for m in nvme_fcloop nvmet_fc nvme_fc nvme_loop nvme_tcp nvme_fabrics; do
	rmmod "$m" || fail "cannot unload $m"
done
[ ! -e /dev/nvme-fabrics ] || fail "/dev/nvme-fabrics still there"
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420
wait_for 10 monitor_logged "nvme-fabrics is absent" || fail "no clear word that /dev/nvme-fabrics is absent"
# Let the backoff grow past what the test would wait for, so only the device's uevent can explain a connect.
some_retries() { [ "$(grep -c "failed .* in a row" "$MON_LOG")" -ge 4 ]; }
wait_for 20 some_retries || fail "expected failed discoveries to be retried"
kver=$(uname -r)
insmod "/lib/modules/$kver/nvme-fabrics.ko" && insmod "/lib/modules/$kver/nvme-tcp.ko" || fail "cannot load the modules again"
if ! wait_for 5 io_live "${SUB}1"; then
	fail "not connected within 5 s of the module load: $(ctrl_list | tr "\n" ";")"
elif ! monitor_logged "nvme-fabrics appeared"; then
	fail "connected, but not because /dev/nvme-fabrics appeared"
fi
stop_monitor
ok "$SCENARIO"
