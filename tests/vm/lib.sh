# shellcheck shell=dash disable=SC2034,SC2120,SC3043
# Helpers for the VM scenarios, sourced by /init before each scenario (busybox ash).
#
# The target is the kernel's own nvmet, configured through configfs in the same VM; the host side
# is whatever shows up under /sys/class/nvme. tgt_reset takes both back to empty so that the
# scenarios of a shared boot cannot see each other's controllers, ports or daemons.
#
# Console contract: a scenario prints exactly one "ok NAME" or "not ok NAME - reason". Lines that
# start with "#" are comments, "### " lines are the harness's markers, "@@ " lines carry fixture data.

NVMET=/sys/kernel/config/nvmet
FCLOOP=/sys/class/fcloop/ctl
DISC_NQN=nqn.2014-08.org.nvmexpress.discovery
HOSTNQN=$(cat /etc/nvme/hostnqn)
HOSTID=$(cat /etc/nvme/hostid)
VM_STATE=/tmp/vm
MON_LOG=$VM_STATE/monitor.log
MON_PIDFILE=$VM_STATE/monitor.pid
FCLOOP_PORTS=$VM_STATE/fcloop-ports
# Fixed FC names, so scenarios can say what the daemon must log.
FC_TGT_WWNN=0x10001100ab000001 FC_TGT_WWPN=0x20001100ab000001
FC_HOST_WWNN=0x10001100aa000001 FC_HOST_WWPN=0x20001100aa000001
FC_TRADDR=nn-$FC_TGT_WWNN:pn-$FC_TGT_WWPN
FC_HOST_TRADDR=nn-$FC_HOST_WWNN:pn-$FC_HOST_WWPN
mkdir -p "$VM_STATE"

note() { echo "# $*"; }

# ok NAME / not_ok NAME REASON: the scenario's one result line, also kept in $VM_STATE/result
# for /init, which reports a scenario that ends without one.
ok() { echo "ok $1" | tee -a "$VM_STATE/result"; }
not_ok() {
	echo "not ok $1 - $2" | tee -a "$VM_STATE/result"
	if [ -s "$MON_LOG" ]; then
		echo "# nvme-monitor log, last 30 lines:"
		tail -n 30 "$MON_LOG" | sed 's/^/#   /'
	fi
}

# Centiseconds since boot, for timeouts without fixed sleeps.
uptime_cs() {
	local up
	read -r up _ < /proc/uptime
	# "12.05": seconds and hundredths; "1" prefix keeps "05" from being read as octal.
	echo $(( ${up%.*} * 100 + 1${up#*.} - 100 ))
}

# wait_for TIMEOUT_S CMD...: run CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
	local end=$(( $(uptime_cs) + $1 * 100 ))
	shift
	until "$@"; do
		[ "$(uptime_cs)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# One line per fabrics controller: "nvmeN transport=.. cntrltype=.. state=.. subsysnqn=.. address=..".
ctrl_list() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/transport" ] || continue
		echo "${c##*/} transport=$(cat "$c/transport") cntrltype=$(cat "$c/cntrltype" 2>/dev/null)" \
			"state=$(cat "$c/state") subsysnqn=$(cat "$c/subsysnqn" 2>/dev/null)" \
			"address=$(tr -d '\n' < "$c/address" 2>/dev/null)"
	done
}

# ctrl_count [FILTER]: how many ctrl_list lines match the extended regex FILTER.
ctrl_count() { ctrl_list | grep -cE -- "${1:-.}" || true; }

# ctrl_find FILTER: the name of the first controller whose ctrl_list line matches.
ctrl_find() { ctrl_list | grep -E -- "$1" | head -n 1 | cut -d' ' -f1; }

ctrl_live() { [ "$(cat "/sys/class/nvme/$1/state" 2>/dev/null)" = live ]; }

# fabrics_connect OPTIONS: write one option string to /dev/nvme-fabrics as the daemon does;
# prints the new controller's name.
fabrics_connect() {
	local res
	exec 3<>/dev/nvme-fabrics || return 1
	if ! printf %s "$1" >&3; then
		exec 3>&-
		return 1
	fi
	res=$(cat <&3)
	exec 3>&-
	res=${res#instance=}
	echo "nvme${res%%,*}"
}

# tgt_subsys NQN [SIZE]: a subsystem open to any host, namespace 1 a sparse file on tmpfs.
tgt_subsys() {
	local d=$NVMET/subsystems/$1 img=$VM_STATE/$1.img
	mkdir "$d" || return
	echo 1 > "$d/attr_allow_any_host"
	mkdir "$d/namespaces/1"
	truncate -s "${2:-64M}" "$img"
	printf %s "$img" > "$d/namespaces/1/device_path"
	echo 1 > "$d/namespaces/1/enable"
}

# adrfam_of TRTYPE TRADDR: the address family configfs wants for a transport address.
adrfam_of() {
	case $1 in
	tcp | rdma) case $2 in *:*) echo ipv6 ;; *) echo ipv4 ;; esac ;;
	*) echo "$1" ;;
	esac
}

# tgt_port ID tcp TRADDR [TRSVCID] | ID loop [TRADDR] | ID fc TRADDR
tgt_port() {
	local d=$NVMET/ports/$1 traddr=$3 trsvcid=
	case $2 in
	tcp) trsvcid=${4:-4420} ;;
	loop) traddr=${3:-$1} ;;
	fc) ;;
	*) note "tgt_port: unknown transport $2"; return 1 ;;
	esac
	mkdir "$d" || return
	echo "$2" > "$d/addr_trtype"
	adrfam_of "$2" "$traddr" > "$d/addr_adrfam"
	echo "$traddr" > "$d/addr_traddr"
	[ -z "$trsvcid" ] || echo "$trsvcid" > "$d/addr_trsvcid"
}

# tgt_link PORT NQN / tgt_unlink PORT NQN: expose a subsystem on a port or take it away (either
# one makes the port's discovery controllers raise a discovery log change AEN).
tgt_link() { ln -s "$NVMET/subsystems/$2" "$NVMET/ports/$1/subsystems/$2"; }
tgt_unlink() { rm "$NVMET/ports/$1/subsystems/$2"; }

# tgt_referral PORT NAME TRTYPE TRADDR TRSVCID: a referral entry in PORT's discovery log.
tgt_referral() {
	local d=$NVMET/ports/$1/referrals/$2
	mkdir "$d" || return
	echo "$3" > "$d/addr_trtype"
	adrfam_of "$3" "$4" > "$d/addr_adrfam"
	echo "$4" > "$d/addr_traddr"
	echo "$5" > "$d/addr_trsvcid"
	echo 1 > "$d/enable"
}

# fcloop_add KIND ARGS: add an fcloop port (target, local or remote) and remember it for tgt_reset.
fcloop_add() {
	echo "$2" > "$FCLOOP/add_$1_port" || return
	echo "$1 ${2%%,lpwwnn*}" >> "$FCLOOP_PORTS"
}

# fc_setup: an FC target port and a host (local) port on fcloop, named by FC_TRADDR and
# FC_HOST_TRADDR; `tgt_port ID fc "$FC_TRADDR"` then puts an nvmet port on the target side.
fc_setup() {
	fcloop_add target "wwnn=$FC_TGT_WWNN,wwpn=$FC_TGT_WWPN" &&
		fcloop_add local "wwnn=$FC_HOST_WWNN,wwpn=$FC_HOST_WWPN"
}

# fc_remote_port: let the host port see the target port. The kernel answers with the
# FC_EVENT=nvmediscovery uevent, as a real fabric does on an RSCN.
fc_remote_port() {
	fcloop_add remote "wwnn=$FC_TGT_WWNN,wwpn=$FC_TGT_WWPN,lpwwnn=$FC_HOST_WWNN,lpwwpn=$FC_HOST_WWPN,roles=0x60"
}

no_ctrls() { [ "$(ctrl_count)" -eq 0 ]; }

delete_all_ctrls() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/delete_controller" ] && echo 1 2>/dev/null > "$c/delete_controller"
	done
	no_ctrls
}

# delete_parallel: every controller at once (one by one, 256 take minutes under TCG); succeeds
# when none is left, so it can be retried under wait_for.
delete_parallel() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/delete_controller" ] && { echo 1 > "$c/delete_controller"; } 2> /dev/null &
	done
	wait
	no_ctrls
}

# tgt_reset: no daemon, no host controllers, no nvmet ports or subsystems, no fcloop ports, and
# nothing under /run: a state file or udev rule mask left there would let a scenario's daemon
# act on the previous scenario's controllers.
tgt_reset() {
	local p x kind names
	[ ! -s "$MON_PIDFILE" ] || stop_monitor > /dev/null
	# A controller that has not started yet refuses deletion (EBUSY): retry until all are gone.
	wait_for 20 delete_all_ctrls || note "tgt_reset: controllers left: $(ctrl_list)"
	for p in "$NVMET"/ports/*; do
		[ -d "$p" ] || continue
		for x in "$p"/subsystems/*; do [ -L "$x" ] && rm "$x"; done
		for x in "$p"/referrals/*; do [ -d "$x" ] && rmdir "$x"; done
		rmdir "$p"
	done
	for p in "$NVMET"/subsystems/*; do
		[ -d "$p" ] || continue
		for x in "$p"/namespaces/*; do [ -d "$x" ] && rmdir "$x"; done
		for x in "$p"/allowed_hosts/*; do [ -L "$x" ] && rm "$x"; done
		rmdir "$p"
	done
	for p in "$NVMET"/hosts/*; do [ -d "$p" ] && rmdir "$p"; done
	# The order blktests uses: on 6.12, deleting the remote port first also frees the shared
	# port object, and the target port can then no longer be found to be deleted.
	if [ -s "$FCLOOP_PORTS" ]; then
		for kind in target local remote; do
			grep "^$kind " "$FCLOOP_PORTS" | while read -r kind names; do
				echo "$names" > "$FCLOOP/del_${kind}_port" || note "tgt_reset: del_${kind}_port $names failed"
			done
		done
		rm -f "$FCLOOP_PORTS"
	fi
	rm -f "$VM_STATE"/*.img
	rm -rf /run/*
}

# start_monitor ARGS...: run nvme-monitor in the background, its output in $MON_LOG.
start_monitor() {
	: > "$MON_LOG"
	nvme-monitor "$@" >> "$MON_LOG" 2>&1 < /dev/null &
	MON_PID=$!
	echo "$MON_PID" > "$MON_PIDFILE"
}

# monitor_listening: the daemon has its uevent socket bound to the kernel's group, so nothing
# the scenario does from now on can slip past it. /proc/net/netlink lists, per socket, the
# protocol (15 = NETLINK_KOBJECT_UEVENT), the port id (the pid for a process's first socket)
# and the groups mask.
monitor_listening() {
	awk -v pid="$MON_PID" '$2 == 15 && $3 == pid && $4 != "00000000" { found = 1 }
		END { exit !found }' /proc/net/netlink
}

monitor_running() { [ -n "${MON_PID:-}" ] && ! proc_gone "$MON_PID"; }

# A zombie still answers kill -0, so look at the state in /proc/PID/stat.
proc_gone() { [ ! -e "/proc/$1" ] || grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }

# stop_monitor: SIGTERM, wait up to 10 s (then SIGKILL); returns and sets MON_RC to the daemon's
# exit status (127 when called from a shell that did not start it, such as tgt_reset).
stop_monitor() {
	local pid=${MON_PID:-$(cat "$MON_PIDFILE" 2>/dev/null)}
	MON_RC=127
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null
		if ! wait_for 10 proc_gone "$pid"; then
			note "nvme-monitor ignored SIGTERM for 10 s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		MON_RC=$?
	fi
	MON_PID=
	rm -f "$MON_PIDFILE"
	return "$MON_RC"
}

# monitor_logged EXTENDED_REGEX: the daemon's log has a matching line.
monitor_logged() { grep -qE -- "$1" "$MON_LOG"; }

# export_fixture NAME FILE: send FILE to the host, which writes it to tests/data/NAME when the
# scenario passes. Size and sha256 let the host reject a transfer mangled on the console.
export_fixture() {
	echo "### fixture $1 $(wc -c < "$2") $(sha256sum < "$2" | cut -d' ' -f1)"
	base64 < "$2" | sed 's/^/@@ /'
	echo "### fixture-end $1"
}

# ---- The fault matrix's invariants (tests/vm/scenarios/fault-*.sh) ----
# Each sets FAULT_WHY to the reason and returns 1 when an invariant does not hold.

# fault_state_ok STATE_FILE [FOREIGN...]: the state file agrees with sysfs. Every "dc nvmeN ... ino=I"
# line names a live discovery controller whose sysfs directory has inode I, "end N" counts the lines,
# and no FOREIGN controller (another owner's) is listed. A missing file is consistent only when no
# discovery controller but the FOREIGN ones exists (nothing would be ours).
fault_state_ok() {
	local f=$1 kind name rest ino n=0 end= c
	shift
	FAULT_WHY=
	if [ ! -e "$f" ]; then
		for c in $(ctrl_list | grep "cntrltype=discovery" | cut -d' ' -f1); do
			case " $* " in *" $c "*) continue ;; esac
			FAULT_WHY="no state file $f, but discovery controller $c exists"
			return 1
		done
		return 0
	fi
	while read -r kind name rest; do
		case $kind in
		nvme-monitor-state) ;;
		dc)
			n=$((n + 1))
			ino=${rest##* ino=}
			ino=${ino%% *}
			case " $* " in *" $name "*) FAULT_WHY="state file lists $name, another owner's controller"; return 1 ;; esac
			if [ "$(cat "/sys/class/nvme/$name/cntrltype" 2>/dev/null)" != discovery ]; then
				FAULT_WHY="state file lists $name, which is not a discovery controller (now: $(ctrl_list | tr '\n' ';'))"
				return 1
			fi
			if [ "$(stat -L -c %i "/sys/class/nvme/$name")" != "$ino" ]; then
				FAULT_WHY="state file lists $name ino=$ino, sysfs has ino=$(stat -L -c %i "/sys/class/nvme/$name")"
				return 1
			fi
			;;
		end) end=$name ;;
		*) FAULT_WHY="state file line '$kind $name ...' unknown"; return 1 ;;
		esac
	done < "$f"
	[ "$end" = "$n" ] || { FAULT_WHY="state file: end '$end' but $n dc lines"; return 1; }
}

# fault_state_complete STATE_FILE [FOREIGN...]: fault_state_ok, and every discovery controller in
# sysfs but the FOREIGN ones is listed (while a daemon without --keep runs, all the others are ours).
fault_state_complete() {
	local f=$1 c
	fault_state_ok "$@" || return 1
	shift
	for c in $(ctrl_list | grep "cntrltype=discovery" | cut -d' ' -f1); do
		case " $* " in *" $c "*) continue ;; esac
		grep -q "^dc $c " "$f" 2>/dev/null || { FAULT_WHY="discovery controller $c is not in $f"; return 1; }
	done
}

# fault_subsys_once SUB...: every SUB has exactly one I/O controller, and it is live.
fault_subsys_once() {
	local s n
	FAULT_WHY=
	for s in "$@"; do
		n=$(ctrl_count "cntrltype=io .*subsysnqn=$s ")
		if [ "$n" -ne 1 ] || [ "$(ctrl_count "cntrltype=io state=live subsysnqn=$s ")" -ne 1 ]; then
			FAULT_WHY="$s: $n I/O controller(s), expected one live: $(ctrl_list | tr '\n' ';')"
			return 1
		fi
	done
}

# fault_after_exit "FOREIGN..." SUB...: after a daemon without --keep exited: no discovery controller
# but the FOREIGN ones is left (none leaked), each FOREIGN one is still live (none wrongly deleted),
# and every SUB is connected exactly once (none duplicated, none lost).
fault_after_exit() {
	local foreign=$1 c
	shift
	FAULT_WHY=
	for c in $foreign; do
		ctrl_live "$c" || { FAULT_WHY="another owner's $c was deleted or is not live: $(ctrl_list | tr '\n' ';')"; return 1; }
	done
	for c in $(ctrl_list | grep "cntrltype=discovery" | cut -d' ' -f1); do
		case " $foreign " in *" $c "*) continue ;; esac
		FAULT_WHY="discovery controller $c leaked: $(ctrl_list | tr '\n' ';')"
		return 1
	done
	fault_subsys_once "$@"
}

# fault_foreign_dc TRSVCID: another owner's persistent discovery controller at 127.0.0.1:TRSVCID
# (as nvme-cli or an admin would make it); prints its name.
fault_foreign_dc() {
	fabrics_connect "nqn=$DISC_NQN,transport=tcp,traddr=127.0.0.1,trsvcid=$1,keep_alive_tmo=30,hostnqn=$HOSTNQN,hostid=$HOSTID"
}

# fault_kill9: SIGKILL the daemon and reap it.
fault_kill9() {
	kill -KILL "$MON_PID" 2>/dev/null
	wait_for 5 proc_gone "$MON_PID"
	wait "$MON_PID" 2>/dev/null
	MON_PID=
	rm -f "$MON_PIDFILE"
}

# ---- NBFT boots (tests/vm/scenarios/nbft-*.sh) ----
# The guest has no NIC: a dummy interface with the HFI's MAC stands in for one, found by MAC as a
# real one is. A target address on the same interface is reached through it (the kernel loops
# local traffic back, and a socket bound to the interface still matches it), so host_iface and
# host_traddr are checked for real.
NBFT_HOST=nqn.2014-08.org.nvmexpress:uuid:6c0fb4e5-0d2a-4b0e-9d3e-2f1a7c5b9e01
NBFT_HOSTID=6c0fb4e5-0d2a-4b0e-9d3e-2f1a7c5b9e01
NBFT_MAC1=52:54:00:4e:42:01
NBFT_MAC2=52:54:00:4e:42:02
# nbft_ctrl_problem CTRL HOSTNQN HOSTID TRADDR IFACE: what about CTRL is not the NBFT path's
# (host NQN, host ID, the HFI's address and interface; an empty HOSTID is not checked); empty
# when all match.
nbft_ctrl_problem() {
	local a
	a=$(ctrl_attr "$1" address)
	if [ "$(ctrl_attr "$1" hostnqn)" != "$2" ]; then
		echo "$1 has host NQN $(ctrl_attr "$1" hostnqn), not the NBFT's $2"
	elif [ -n "$3" ] && [ "$(ctrl_attr "$1" hostid)" != "$3" ]; then
		echo "$1 has host ID $(ctrl_attr "$1" hostid), not the NBFT's $3"
	elif ! echo "$a" | grep -q "host_traddr=$4"; then
		echo "$1 does not connect from the HFI's address $4: $a"
	elif ! echo "$a" | grep -q "host_iface=$5"; then
		echo "$1 does not connect from $5 (the HFI's interface): $a"
	fi
}


# nbft_if NAME MAC [ADDR/PREFIX]: the stand-in NIC, up, with the address if given.
nbft_if() {
	# (busybox ip takes no address on "link add")
	ip link add "$1" type dummy && ip link set "$1" address "$2" && ip link set "$1" up &&
		{ [ -z "${3:-}" ] || ip addr add "$3" dev "$1"; }
}
# nbft_if_del NAME...: the controllers first (deleting an interface under a live path would leave
# it reconnecting into the next scenario), then the interfaces.
nbft_if_del() {
	wait_for 20 delete_all_ctrls || note "nbft_if_del: controllers left: $(ctrl_list | tr "\n" ";")"
	for i in "$@"; do ip link del "$i" 2> /dev/null; done
	true
}

# nbft_table DIR MKNBFT-ARGS...: DIR/NBFT written by the builder, for --nbft-path DIR.
nbft_table() {
	local dir=$1
	shift
	rm -rf "$dir" && mkdir -p "$dir" && mknbft -o "$dir/NBFT" "$@"
}

# ctrl_attr CTRL ATTR: a sysfs attribute of /sys/class/nvme/CTRL.
ctrl_attr() { cat "/sys/class/nvme/$1/$2" 2> /dev/null; }

# ---- DH-HMAC-CHAP (tests/vm/scenarios/auth-*.sh) ----
# Test keys, DHHC-1 with their CRCs (hash 01: 32-byte keys). AUTH_WRONG is well-formed but not
# the one the target expects.
AUTH_HOST_KEY='DHHC-1:01:mmdnN0/uBWREgBjXTkBQhZA5kUOnuY+IC3xIBVjd0zNdQzAO:'
AUTH_CTRL_KEY='DHHC-1:01:/9VS3iRwVy0sCddPXUfnHJWiRFXAvAW6FhRSyeBS+7Y/hf5b:'
AUTH_WRONG='DHHC-1:01:x2v6rzlQGRiSBYNrco83U+oGGwptGG2OTvD6wJQm8Dz0Smyo:'
AUTH_SUB_KEY='DHHC-1:00:8V8D7RjLY51+dKHvlpGMWHIHS8+UKajdZFrEjDR9Sjq17k2h:'
AUTH_KEYS="$AUTH_HOST_KEY $AUTH_CTRL_KEY $AUTH_WRONG $AUTH_SUB_KEY"

# tgt_auth SUBNQN HOSTNQN HOSTKEY [CTRLKEY [DHGROUP]]: SUBNQN admits HOSTNQN only, which must
# authenticate with HOSTKEY (and the target with CTRLKEY: bidirectional). nvmet keeps the keys per
# host NQN, for every subsystem that admits it.
tgt_auth() {
	local s=$NVMET/subsystems/$1 h=$NVMET/hosts/$2
	[ -d "$h" ] || mkdir "$h" || return
	printf %s "$3" > "$h/dhchap_key" || return
	if [ -n "${4:-}" ]; then printf %s "$4" > "$h/dhchap_ctrl_key" || return; fi
	if [ -n "${5:-}" ]; then printf %s "$5" > "$h/dhchap_dhgroup" || return; fi
	echo 0 > "$s/attr_allow_any_host" && ln -s "$h" "$s/allowed_hosts/$2"
}

# auth_leaks FILE...: the test keys found in FILEs (empty: none), one "key-prefix in file" per line.
auth_leaks() {
	local k f i piece n
	for f in "$@"; do
		[ -e "$f" ] || continue
		for k in $AUTH_KEYS; do
			# The base64 part alone, and every 12-character piece of it (overlapping by 6, so
			# any 18 characters of the key contain one): a key cut by a truncated record, half
			# redacted or re-quoted is still a leak.
			k=${k#DHHC-1:0?:}
			k=${k%:}
			n=${#k}
			i=0
			while [ $((i + 12)) -le "$n" ]; do
				piece=$(echo "$k" | cut -c $((i + 1))-$((i + 12)))
				if grep -qF -- "$piece" "$f"; then
					echo "${k%"${k#????????}"}... (its characters $((i + 1))-$((i + 12))) in $f"
					break
				fi
				i=$((i + 6))
			done
		done
	done
}
