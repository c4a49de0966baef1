#!/bin/sh
# boot: shared
# timeout: 120
#
# The usual NBFT of a boot: the SSNS the firmware booted from and the discovery descriptor it
# found it through, same subsystem, same port. With -p and without --keep:
# - one I/O controller, not two: the log's entry and the SSNS are the same path;
# - SIGTERM leaves the I/O controller and the NBFT's discovery controller up (without --keep),
#   and the state file hands the discovery controller over as origin=nbft;
# - the next instance adopts it (no second discovery controller), and its SIGTERM leaves it up too;
# - a controller that is not the NBFT's (a discovery.conf address) is still deleted at exit.

SUB=nqn.2024-01.io.example:nbft-kept
# Behind the discovery.conf address (nvmet enables a port only once a subsystem is linked to it).
OTHER=nqn.2024-01.io.example:nbft-kept-other
DIR=$VM_STATE/nbft-kept
ETC=$VM_STATE/etc-nbft-kept
STATE=/run/nvme-monitor/state
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; nbft_if_del nbft0; exit 0; }
nbft_dc() { ctrl_find "cntrltype=discovery state=live .*traddr=10.99.0.1,trsvcid=4420"; }
conf_dc() { ctrl_find "cntrltype=discovery state=live .*traddr=127.0.0.1,trsvcid=4421"; }
io_count() { ctrl_count "cntrltype=io state=live subsysnqn=$SUB "; }
up() { [ -n "$(nbft_dc)" ] && [ -n "$(conf_dc)" ] && [ "$(io_count)" -ge 1 ]; }

nbft_if nbft0 "$NBFT_MAC1" 10.99.0.1/24 || fail "cannot add the stand-in NIC"
tgt_subsys "$SUB" 16M && tgt_port 1 tcp 10.99.0.1 4420 && tgt_link 1 "$SUB" &&
	tgt_subsys "$OTHER" 16M && tgt_port 2 tcp 127.0.0.1 4421 && tgt_link 2 "$OTHER" ||
	fail "cannot set up the target"
nbft_table "$DIR" --hostnqn "$NBFT_HOST" --hostid "$NBFT_HOSTID" --hfi "$NBFT_MAC1,10.99.0.1/24" \
	--ssns "1,10.99.0.1,4420,$SUB" --discovery "1,nvme+tcp://10.99.0.1:4420/" || fail "mknbft failed"
rm -rf "$ETC" && mkdir -p "$ETC" && cp /etc/nvme/hostnqn /etc/nvme/hostid "$ETC/" &&
	echo "-t tcp -a 127.0.0.1 -s 4421" > "$ETC/discovery.conf" || fail "cannot write discovery.conf"
start_monitor -v -p --etc-dir "$ETC" --nbft-path "$DIR"
wait_for 20 up || fail "not everything came up: $(ctrl_list | tr '\n' ';')"
sleep 2
[ "$(io_count)" -eq 1 ] || fail "the subsystem is connected $(io_count) times: $(ctrl_list | tr '\n' ';')"
dc=$(nbft_dc)
cdc=$(conf_dc)
io=$(ctrl_find "cntrltype=io state=live subsysnqn=$SUB ")
stop_monitor
[ "$MON_RC" -eq 0 ] || fail "exit status $MON_RC"
monitor_logged "leaving $dc for .* up: a path from the firmware's boot table" || fail "the log does not say $dc is left up"
ctrl_live "$dc" || fail "SIGTERM without --keep took the NBFT's discovery controller $dc down"
ctrl_live "$io" || fail "SIGTERM took the I/O controller $io down"
gone() { [ ! -e "/sys/class/nvme/$1" ]; }
wait_for 10 gone "$cdc" || fail "the discovery.conf discovery controller $cdc was left up without --keep"
grep -q "^dc $dc .*origin=nbft" "$STATE" || fail "the state file does not hand $dc over as origin=nbft: $(tr '\n' ';' < "$STATE")"
start_monitor -v -p --etc-dir "$ETC" --nbft-path "$DIR"
wait_for 10 monitor_logged "adopted discovery controller $dc" || fail "the next instance did not adopt $dc"
wait_for 20 up || fail "the next instance did not bring everything up: $(ctrl_list | tr '\n' ';')"
sleep 2
[ "$(ctrl_count "cntrltype=discovery .*traddr=10.99.0.1,trsvcid=4420")" -eq 1 ] ||
	fail "a second discovery controller at the NBFT's address: $(ctrl_list | tr '\n' ';')"
[ "$(io_count)" -eq 1 ] || fail "the next instance connected the subsystem again: $(ctrl_list | tr '\n' ';')"
stop_monitor
ctrl_live "$dc" || fail "the adopting instance's SIGTERM took $dc down"
nbft_if_del nbft0
ok "$SCENARIO"
