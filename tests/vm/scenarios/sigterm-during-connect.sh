#!/bin/sh
# boot: shared
# timeout: 60
#
# SIGTERM while the daemon is blocked in a write to /dev/nvme-fabrics: the discovery controller's
# TCP connect goes to an address whose SYNs vanish (a route into a dummy interface), which the
# kernel gives up on after its SYN timeout (~3 s, one retry). The socket wait is interruptible, and
# the daemon writes with SIGTERM deliverable: it must exit within 2 s of the signal, log that the
# connect was interrupted, and leave no controller behind. The kernel's own figure for the same
# write, as a plain blocking write, is measured first and printed as a note.

BH_NET=10.99.0.0/24 BH_ADDR=10.99.0.1 BH_PORT=8009
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

start_monitor --persistent --no-config -v -t tcp -a "$BH_ADDR" -s "$BH_PORT"
if ! wait_for 10 in_connect; then
	not_ok "$SCENARIO" "the daemon did not start its discovery"
	stop_monitor
	blackhole_down
	exit 0
fi
# The write follows the log line within microseconds; give it time to be deep in the socket wait.
sleep 0.5
wchan=$(cat "/proc/$MON_PID/wchan" 2> /dev/null)
note "daemon waits in ${wchan:-?} when SIGTERM is sent"
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
note "daemon exited $took s after SIGTERM (exit status $rc); the kernel alone would take $kernel_s s"
grep -m 1 "interrupted by" "$MON_LOG" | sed 's/^/# log: /'
dmesg | grep -iE "nvme.*(10\.99|socket)" | tail -n 3 | sed 's/^/# dmesg: /'

if [ "$took_cs" -gt "$LIMIT_CS" ]; then
	not_ok "$SCENARIO" "the daemon took $took s to exit after SIGTERM (limit 2 s)"
elif [ "$rc" != 0 ]; then
	not_ok "$SCENARIO" "exit status $rc after SIGTERM"
elif ! monitor_logged "interrupted by SIGTERM"; then
	not_ok "$SCENARIO" "no log line says the connect was interrupted"
elif [ "$(ctrl_count)" -ne 0 ]; then
	not_ok "$SCENARIO" "controllers left after the interrupted connect: $(ctrl_list | tr '\n' ';')"
else
	ok "$SCENARIO"
fi
blackhole_down
