#!/bin/sh
# boot: shared
# timeout: 60
#
# SIGTERM while the daemon is blocked in a write to /dev/nvme-fabrics: the discovery controller's
# TCP connect goes to an address whose SYNs vanish (a route into a dummy interface), which the
# kernel gives up on after its SYN timeout (~3 s, one retry). The socket wait is interruptible, and
# the daemon writes with SIGTERM deliverable: it must exit within 2 s of the signal, log that the
# connect was interrupted, and leave no controller behind. The kernel's own figure for the same
# write, as a plain blocking write, is measured first and printed as a note. The same again while
# the kernel waits for the answer to its ICReq from a listener that never gives one.

BH_NET=10.99.0.0/24 BH_ADDR=10.99.0.1 BH_PORT=8009 ICREQ_PORT=8010
LIMIT_CS=200

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 100 }'; }
in_connect() { monitor_logged "discovery 1 at"; }
blackhole_down() { ip link del bh0 2> /dev/null; }

if ! ip link add bh0 type dummy || ! ip link set bh0 up || ! ip route add "$BH_NET" dev bh0; then
	not_ok "$SCENARIO" "cannot set up the black hole (dummy interface bh0, route $BH_NET)"
	blackhole_down
	exit 0
fi

# What the same write costs when nothing can interrupt it: the kernel's SYN timeout.
t0=$(uptime_cs)
if fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=$BH_ADDR,trsvcid=$BH_PORT,hostnqn=$HOSTNQN,hostid=$HOSTID" > /dev/null 2>&1; then
	not_ok "$SCENARIO" "a connect to the black hole $BH_ADDR succeeded"
	blackhole_down
	exit 0
fi
kernel_cs=$(($(uptime_cs) - t0))
if [ "$kernel_cs" -lt 100 ]; then
	# Then it is no black hole and the daemon's figure below would prove nothing.
	not_ok "$SCENARIO" "a plain write to $BH_ADDR failed after $kernel_cs cs, expected the SYN timeout: $(dmesg | tail -n 1)"
	blackhole_down
	exit 0
fi
kernel_s=$(elapsed 0 "$kernel_cs")
note "uninterrupted write to the black hole fails after $kernel_s s (the kernel's SYN timeout)"

# sigterm_in_connect TRADDR TRSVCID WHAT: start the daemon at that address, SIGTERM it inside its
# connect write; sets FAIL to the reason when it did not stop in time, cleanly and saying why.
sigterm_in_connect() {
	local t0 took_cs took rc wchan
	FAIL=
	start_monitor --persistent --no-config -v -t tcp -a "$1" -s "$2"
	if ! wait_for 10 in_connect; then
		FAIL="$3: the daemon did not start its discovery"
		stop_monitor
		return
	fi
	# The write follows the log line within microseconds; give it time to be deep in its wait.
	sleep 0.5
	wchan=$(cat "/proc/$MON_PID/wchan" 2> /dev/null)
	t0=$(uptime_cs)
	kill -TERM "$MON_PID"
	wait_for 10 proc_gone "$MON_PID"
	took_cs=$(($(uptime_cs) - t0))
	took=$(elapsed 0 "$took_cs")
	if proc_gone "$MON_PID"; then
		wait "$MON_PID"
		rc=$?
	else
		kill -KILL "$MON_PID"
		rc=killed
	fi
	MON_PID=
	rm -f "$MON_PIDFILE"
	note "$3: SIGTERM sent while waiting in ${wchan:-?}, daemon exited $took s later (exit status $rc)"
	grep -m 1 -o "error: discovery at [^:]*: unable to connect\|(interrupted by.*" "$MON_LOG" |
		tr '\n' ' ' | sed 's/^/# log: /; s/$/\n/'
	if [ "$took_cs" -gt "$LIMIT_CS" ]; then
		FAIL="$3: the daemon took $took s to exit after SIGTERM (limit 2 s)"
	elif [ "$rc" != 0 ]; then
		FAIL="$3: exit status $rc after SIGTERM"
	elif ! monitor_logged "interrupted by SIGTERM"; then
		FAIL="$3: no log line says the connect was interrupted"
	elif [ "$(ctrl_count)" -ne 0 ]; then
		FAIL="$3: controllers left after the interrupted connect: $(ctrl_list | tr '\n' ';')"
	fi
}

sigterm_in_connect "$BH_ADDR" "$BH_PORT" "socket connect"
note "the kernel alone: the same write fails after $kernel_s s"
dmesg | grep -iE "nvme.*socket" | tail -n 2 | sed 's/^/# dmesg: /'
blackhole_down
if [ -n "$FAIL" ]; then
	not_ok "$SCENARIO" "$FAIL"
	exit 0
fi

# A listener that accepts the connection and never answers the ICReq: the kernel waits in a socket
# receive with a 10 s timeout, also interruptible. Its stdin (a FIFO we hold open) never ends, so
# it never closes the connection first.
fifo=$VM_STATE/icreq.fifo
rm -f "$fifo" && mkfifo "$fifo" && exec 4<> "$fifo"
nc -l -p "$ICREQ_PORT" < "$fifo" > /dev/null 2>&1 &
NC_PID=$!
sigterm_in_connect 127.0.0.1 "$ICREQ_PORT" "ICReq"
kill "$NC_PID" 2> /dev/null
wait "$NC_PID" 2> /dev/null
exec 4>&-
rm -f "$fifo"
dmesg | grep -iE "nvme.*icresp" | tail -n 1 | sed 's/^/# dmesg: /'
if [ -n "$FAIL" ]; then
	not_ok "$SCENARIO" "$FAIL"
else
	ok "$SCENARIO"
fi
