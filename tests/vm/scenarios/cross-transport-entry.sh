#!/bin/sh
# boot: shared
# timeout: 60
#
# Entries this host cannot use do not fail the address forever. A TCP discovery controller reached
# with a host_traddr refers to a loop port: the referral is followed without the TCP host_traddr
# (it means nothing to loop) and its subsystem connected. A subsystem in the TCP log that cannot
# take another controller (its only cntlid is held by another host's controller) fails alone: it gets its own backoff and the log is not read again for it (one
# discovery run of the TCP port in 14 s), while the good subsystem stays connected.

SUB=nqn.2024-01.io.example:xt
io_live() { [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$1 ")" -eq 1 ]; }

tgt_subsys "${SUB}-tcp" 16M && tgt_subsys "${SUB}-loop" 16M && tgt_subsys "${SUB}-busy" 16M &&
	echo 5 > "$NVMET/subsystems/${SUB}-busy/attr_cntlid_min" &&
	echo 5 > "$NVMET/subsystems/${SUB}-busy/attr_cntlid_max" &&
	tgt_port 2 tcp 127.0.0.1 4420 && tgt_link 2 "${SUB}-tcp" && tgt_link 2 "${SUB}-busy" &&
	tgt_port 5 loop && tgt_link 5 "${SUB}-loop" &&
	tgt_referral 2 toloop loop 5 "" || { not_ok "$SCENARIO" "cannot set up the target"; exit 0; }
other=nqn.2014-08.org.nvmexpress:uuid:0a7e0a7e-0000-4000-8000-000000000001
holder=$(fabrics_connect "nqn=${SUB}-busy,transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=$other,hostid=0a7e0a7e-0000-4000-8000-000000000001")
[ -n "$holder" ] || { not_ok "$SCENARIO" "cannot take the busy subsystem's only cntlid"; exit 0; }
start_monitor --persistent --autoconnect --no-config -v -t tcp -a 127.0.0.1 -s 4420 -w 127.0.0.1
if ! wait_for 20 io_live "${SUB}-loop" || ! wait_for 10 io_live "${SUB}-tcp"; then
	not_ok "$SCENARIO" "subsystems not connected: $(ctrl_list | tr "\n" ";")"; stop_monitor; exit 0
fi
sleep 14
tcp_runs=$(grep -cE "debug: discovery [0-9]+ at tcp traddr=127.0.0.1,trsvcid=4420" "$MON_LOG")
alone=$(grep -c "${SUB}-busy at .* retrying it alone" "$MON_LOG")
stop_monitor
busy=$(ctrl_count "subsysnqn=${SUB}-busy ")
echo 1 > "/sys/class/nvme/$holder/delete_controller"
note "TCP port discovered $tcp_runs time(s); the busy subsystem retried alone $alone time(s)"
if [ "$tcp_runs" -ne 1 ]; then
	not_ok "$SCENARIO" "the TCP port was discovered $tcp_runs times for one failing entry"
elif [ "$alone" -lt 2 ]; then
	not_ok "$SCENARIO" "the failing entry was not retried on its own"
elif [ "$busy" -ne 1 ]; then
	not_ok "$SCENARIO" "the busy subsystem has a controller of ours: $(ctrl_list | tr "\n" ";")"
else
	ok "$SCENARIO"
fi
