# bash completion for nvme-monitor(8)                                  -*- shell-script -*-
#
# Self-contained: works with or without the bash-completion package (no _init_completion), and with
# both `--option value` and `--option=value` (bash splits the latter at '=' by default).
# Keep the option lists in step with `nvme-monitor --help` (src/cli.rs).

# COMPREPLY = the words of $1 that start with $2.
_nvme_monitor_reply() {
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

_nvme_monitor() {
    local cur prev opt
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    # `--log=k`: bash gives the words `--log` `=` `k` (or `--log` `=` while nothing is typed yet).
    if [[ $cur == = ]]; then
        opt=$prev
        cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        opt=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        # COMP_WORDBREAKS without '=': complete the value after it, keep the option in the word.
        opt=${cur%%=*}
        cur=${cur#*=}
    else
        opt=$prev
    fi

    local flags="--autoconnect --persistent --keep --no-config --nbft --no-nbft --cmdline --once --dry-run
        --no-mask-udev --verbose --silent --help --version --duplicate-connect --disable-sqflow
        --hdr-digest --data-digest --tls"
    local valued="--config-file --config --owner --epcsd-poll-interval --output-format --state-dir --prune-grace --log --transport --traddr --trsvcid --host-traddr
        --host-iface --hostnqn --hostid --nr-io-queues --nr-write-queues --nr-poll-queues
        --queue-size --keep-alive-tmo --reconnect-delay --ctrl-loss-tmo --fast_io_fail_tmo
        --fast-io-fail-tmo --tos --sysfs-root --dev-root --proc-root --run-root --uevent-buffer --etc-dir
        --nbft-path --dhchap-secret --dhchap-ctrl-secret --keyring --tls-key --tls_key"
    local shorts="-A -p -K -C -o -v -S -h -V -t -a -s -w -f -q -I -i -W -P -Q -k -c -l -F -T -D -g -G"

    case $opt in
    -o | --output-format)
        _nvme_monitor_reply "normal json" "$cur"
        return
        ;;
    -C | --config-file | --config | --dhchap-secret | --dhchap-ctrl-secret)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    --state-dir | --sysfs-root | --dev-root | --proc-root | --run-root | --etc-dir | --nbft-path)
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return
        ;;
    --keyring)
        # Or a serial: keyctl show %:.nvme lists the keyring and its keys.
        _nvme_monitor_reply ".nvme" "$cur"
        return
        ;;
    --log)
        _nvme_monitor_reply "stderr kmsg" "$cur"
        return
        ;;
    -t | --transport)
        _nvme_monitor_reply "rdma fc tcp loop" "$cur"
        return
        ;;
    -f | --host-iface)
        local ifaces=
        [[ -d /sys/class/net ]] && ifaces=$(command ls /sys/class/net 2>/dev/null)
        _nvme_monitor_reply "$ifaces" "$cur"
        return
        ;;
    -s | --trsvcid)
        _nvme_monitor_reply "8009 4420" "$cur"
        return
        ;;
    -q | --hostnqn)
        local nqn=
        [[ -r /etc/nvme/hostnqn ]] && read -r nqn </etc/nvme/hostnqn
        _nvme_monitor_reply "$nqn" "$cur"
        return
        ;;
    -I | --hostid)
        local id=
        [[ -r /etc/nvme/hostid ]] && read -r id </etc/nvme/hostid
        _nvme_monitor_reply "$id" "$cur"
        return
        ;;
    -a | --traddr | -w | --host-traddr | -i | --nr-io-queues | -W | --nr-write-queues | \
        -P | --nr-poll-queues | -Q | --queue-size | -k | --keep-alive-tmo | \
        -c | --reconnect-delay | -l | --ctrl-loss-tmo | -F | --fast_io_fail_tmo | \
        --fast-io-fail-tmo | -T | --tos)
        # Free-form values: nothing sensible to offer.
        COMPREPLY=()
        return
        ;;
    esac

    # The subcommands, as the first word.
    if ((COMP_CWORD == 1)) && [[ $cur != -* ]]; then
        _nvme_monitor_reply "status nbft" "$cur"
        return
    fi
    if ((COMP_CWORD == 2)) && [[ ${COMP_WORDS[1]} == nbft ]]; then
        _nvme_monitor_reply "show" "$cur"
        return
    fi

    case $cur in
    --*)
        _nvme_monitor_reply "$flags $valued" "$cur"
        ;;
    -*)
        _nvme_monitor_reply "$shorts $flags $valued" "$cur"
        ;;
    *)
        COMPREPLY=()
        ;;
    esac
} && complete -F _nvme_monitor nvme-monitor
