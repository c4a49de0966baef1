#!/bin/sh
# cmdline hook: a TCP or RDMA discovery controller on the kernel command line needs the network,
# so ask dracut's network module to bring it up (rd.neednet=1), as dracut's nvmf module does;
# the same command line then boots with either module.

for _nvmf_discover in $(getargs rd.nvmf.discover -d nvmf.discover=); do
    case $_nvmf_discover in
    tcp,* | rdma,*)
        echo rd.neednet=1 > /etc/cmdline.d/nvme-monitor-neednet.conf
        break
        ;;
    esac
done
unset _nvmf_discover
