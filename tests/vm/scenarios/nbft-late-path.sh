#!/bin/sh
# boot: shared
# timeout: 90
#
# Two HFIs, one path each to the same subsystem (two fabrics, as a dual-path boot has them). The
# first HFI's interface is up at start; the second interface appears 10 s later and gets its
# address after that. The second path must be connected within 2 s of the address appearing,
# because rtnetlink said so: the log says the interface became ready, and no retry ran for it
# (it was never tried before its network was there). Each path connects from its own interface
# (host_iface) and address (host_traddr), under the NBFT's host NQN.

SUB=nqn.2024-01.io.example:nbft-late
DIR=$VM_STATE/nbft-late
fail() { not_ok "$SCENARIO" "$*"; stop_monitor; nbft_if_del nbft0 nbft1; exit 0; }
path_live() { c=$(ctrl_find "cntrltype=io state=live subsysnqn=$SUB .*host_iface=$1"); [ -n "$c" ]; }

nbft_if nbft0 "$NBFT_MAC1" 10.99.0.1/24 || fail "cannot add the first stand-in NIC"
tgt_subsys "$SUB" 16M && tgt_port 1 tcp 0.0.0.0 4420 && tgt_link 1 "$SUB" ||
	fail "cannot set up the target"
nbft_table "$DIR" --hostnqn "$NBFT_HOST" --hostid "$NBFT_HOSTID" \
	--hfi "$NBFT_MAC1,10.99.0.1/24" --hfi "$NBFT_MAC2,10.99.1.1/24" \
	--ssns "1,10.99.0.1,4420,$SUB" --ssns "2,10.99.1.1,4420,$SUB" || fail "mknbft failed"
start_monitor --no-config -v --nbft-path "$DIR"
wait_for 15 path_live nbft0 || fail "the first path (nbft0) was not connected: $(ctrl_list | tr '\n' ';')"
wait_for 5 monitor_logged "waiting for an interface with MAC $NBFT_MAC2" ||
	fail "the daemon did not say the second path waits for its interface"
sleep 10
nbft_if nbft1 "$NBFT_MAC2" || fail "cannot add nbft1"
sleep 1
path_live nbft1 && fail "the second path was connected before its interface had its address"
t0=$(uptime_cs)
ip addr add 10.99.1.1/24 dev nbft1 || fail "cannot add the second HFI's address"
wait_for 10 path_live nbft1 || fail "the second path was not connected after its address appeared"
dt=$(( $(uptime_cs) - t0 ))
note "second path live $dt cs after its address appeared"
[ "$dt" -le 200 ] || fail "the second path took $dt cs (limit 200) after its address appeared"
monitor_logged "SSNS 2 via HFI 2: nbft1 is ready: connecting from it" ||
	fail "no log line saying nbft1 became ready"
monitor_logged "10\.99\.1\.1.*(retrying|backoff)" && fail "the second path went through a retry: $(grep 10.99.1.1 "$MON_LOG" | tr '\n' ';')"
for i in nbft0 nbft1; do
	c=$(ctrl_find "cntrltype=io state=live subsysnqn=$SUB .*host_iface=$i")
	[ "$(ctrl_attr "$c" hostnqn)" = "$NBFT_HOST" ] || fail "$c ($i) has host NQN $(ctrl_attr "$c" hostnqn), not the NBFT's"
	[ "$(ctrl_attr "$c" hostid)" = "$NBFT_HOSTID" ] || fail "$c ($i) has host ID $(ctrl_attr "$c" hostid), not the NBFT's"
	case $i in nbft0) a=10.99.0.1 ;; *) a=10.99.1.1 ;; esac
	ctrl_attr "$c" address | grep -q "host_traddr=$a" || fail "$c ($i) does not connect from $a: $(ctrl_attr "$c" address)"
done
[ "$(ctrl_count "cntrltype=io .*subsysnqn=$SUB ")" -eq 2 ] || fail "not exactly two paths: $(ctrl_list | tr '\n' ';')"
stop_monitor
nbft_if_del nbft0 nbft1
ok "$SCENARIO"
