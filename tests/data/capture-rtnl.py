#!/usr/bin/env python3
"""Capture real rtnetlink datagrams for src/rtnetlink.rs's tests and the rtnetlink fuzz target.

Run as root on a Linux host (it makes and removes a veth pair named nmcap*, and tries a VLAN on
it, which a host without the 8021q module does not make; the 2026-12-03 capture has none):
a link dump and an address dump as the daemon requests them, then the multicast messages of
RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR while the pair appears, gets addresses
(IPv6 first tentative, then usable once duplicate address detection ends), goes up and goes away.

Outputs (in the directory of this script), each file one datagram exactly as recv() returned it:
  rtnl-dump-links.bin   the first datagram of the RTM_GETLINK dump (lo first)
  rtnl-dump-addrs.bin   the first datagram of the RTM_GETADDR dump
  rtnl-events-NN.bin    the multicast datagrams in order
  rtnl-capture.txt      what each file holds, one line per message (for review)

Usage: tests/data/capture-rtnl.py
"""

import os
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = 0x1 | 0x10 | 0x100
NAMES = {2: "ERROR", 3: "DONE", 16: "NEWLINK", 17: "DELLINK", 20: "NEWADDR", 21: "DELADDR"}


def ip(*args, check=True):
    subprocess.run(["ip", *args], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def describe(buf):
    out, at = [], 0
    while at + 16 <= len(buf):
        length, kind = struct.unpack_from("=IH", buf, at)
        if length < 16:
            break
        body = buf[at + 16 : at + length]
        what = NAMES.get(kind, str(kind))
        if kind in (16, 17) and len(body) >= 16:
            _, _, _, index, flags, _ = struct.unpack_from("=BBHiII", body)
            what += f" ifindex={index} flags={flags:#x}"
        elif kind in (20, 21) and len(body) >= 8:
            fam, plen, flags, scope, index = struct.unpack_from("=BBBBI", body)
            what += f" ifindex={index} family={fam} prefixlen={plen} flags={flags:#x}"
        out.append(what)
        at += (length + 3) & ~3
    return out


def dump(sock, kind, family):
    # nlmsghdr + ifinfomsg (16 bytes) or ifaddrmsg (8 bytes), NLM_F_REQUEST | NLM_F_DUMP
    body = struct.pack("=BBHiII", family, 0, 0, 0, 0, 0) if kind == 18 else struct.pack("=BBBBI", family, 0, 0, 0, 0)
    sock.send(struct.pack("=IHHII", 16 + len(body), kind, 0x301, 1, 0) + body)
    first = None
    while True:
        d = sock.recv(65536)
        first = first or d
        if not d or any(m == "DONE" for m in describe(d)):
            return first


def main():
    if os.geteuid() != 0:
        sys.exit("capture-rtnl: must run as root (it makes a veth pair)")
    files = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        files.append(("rtnl-dump-links.bin", dump(s, 18, 0)))
        files.append(("rtnl-dump-addrs.bin", dump(s, 22, 0)))
    ip("link", "del", "nmcap0", check=False)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, GROUPS))
        ip("link", "add", "nmcap0", "address", "02:00:00:00:5e:01", "type", "veth", "peer", "name", "nmcap1")
        ip("link", "add", "link", "nmcap0", "name", "nmcap0.7", "type", "vlan", "id", "7", check=False)
        ip("addr", "add", "192.0.2.10/24", "dev", "nmcap0")
        ip("addr", "add", "2001:db8::10/64", "dev", "nmcap0")
        ip("link", "set", "nmcap1", "up")
        ip("link", "set", "nmcap0", "up")
        time.sleep(3)  # DAD (1 probe, 1 s) ends: the address is announced again, usable
        ip("link", "del", "nmcap0")
        time.sleep(0.5)
        s.settimeout(0.5)
        n = 0
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            files.append((f"rtnl-events-{n:02}.bin", d))
            n += 1
    with open(os.path.join(HERE, "rtnl-capture.txt"), "w") as txt:
        txt.write(f"# captured by capture-rtnl.py on {os.uname().release}\n")
        for name, d in files:
            with open(os.path.join(HERE, name), "wb") as f:
                f.write(d)
            txt.write(f"{name} ({len(d)} bytes): {'; '.join(describe(d))}\n")
    print(f"capture-rtnl: {len(files)} datagrams")


if __name__ == "__main__":
    main()
