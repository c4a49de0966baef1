#!/usr/bin/env python3
"""Turn the captured uevent log into the exact byte fixtures used by src/uevent.rs tests.

The capture (uevent-capture-6.12.117-cloud.txt, recorded in a VM running Linux 6.12.117 with
nvmet loop, tcp and fcloop targets) has one `UEVENT ... len=N ...: <payload>` line per netlink
message, NUL shown as `|`. Every `|` becomes NUL again, so each payload ends with the kernel's
final NUL; its length is checked against the captured `len=`.

Outputs (in the directory of this script):
  uevent-<case>.bin  one raw payload per case, picked by the predicates below
  uevent-all.bin     every payload in capture order, each preceded by its u32 little-endian length

Usage: tests/data/make-uevent-fixtures.py [capture.txt]
"""

import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LINE = re.compile(r"^UEVENT t=\d+ms len=(\d+) from_pid=(\d+) grp=1: (.*)$")


def read_capture(path):
    payloads = []
    with open(path, "rb") as f:
        for raw in f:
            m = LINE.match(raw.decode("utf-8").rstrip("\n"))
            if not m:
                continue
            length, pid, text = int(m.group(1)), int(m.group(2)), m.group(3)
            payload = text.replace("|", "\0").encode("utf-8")
            if len(payload) != length or not payload.endswith(b"\0") or pid != 0:
                sys.exit(f"capture line does not round-trip: {raw!r}")
            payloads.append(payload)
    return payloads


def fields(payload):
    return dict(f.split(b"=", 1) for f in payload.split(b"\0")[1:] if b"=" in f)


def first(payloads, want):
    for p in payloads:
        f = fields(p)
        if all(f.get(k.encode()) == v.encode() for k, v in want.items()):
            return p
    sys.exit(f"no payload matches {want}")


CASES = {
    "aen": {"SUBSYSTEM": "nvme", "NVME_AEN": "0x70f002", "NVME_TRTYPE": "tcp"},
    "rediscover": {"SUBSYSTEM": "nvme", "NVME_EVENT": "rediscover"},
    "connected": {"SUBSYSTEM": "nvme", "NVME_EVENT": "connected", "NVME_TRTYPE": "tcp"},
    "connected-loop": {"SUBSYSTEM": "nvme", "NVME_EVENT": "connected", "NVME_TRADDR": "(null)"},
    "ctrl-add": {"SUBSYSTEM": "nvme", "ACTION": "add", "NVME_TRTYPE": "tcp"},
    "ctrl-remove": {"SUBSYSTEM": "nvme", "ACTION": "remove", "NVME_TRTYPE": "tcp"},
    "fc-nvmediscovery": {"SUBSYSTEM": "fc", "FC_EVENT": "nvmediscovery"},
    # A namespace block device: DEVNAME starts with nvme but it is not a controller.
    "unrelated": {"SUBSYSTEM": "block", "ACTION": "add", "DEVNAME": "nvme1n1"},
}


def main():
    capture = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "uevent-capture-6.12.117-cloud.txt")
    payloads = read_capture(capture)
    for name, want in CASES.items():
        with open(os.path.join(HERE, f"uevent-{name}.bin"), "wb") as out:
            out.write(first(payloads, want))
    with open(os.path.join(HERE, "uevent-all.bin"), "wb") as out:
        for p in payloads:
            out.write(struct.pack("<I", len(p)) + p)
    print(f"{len(payloads)} payloads, {len(CASES)} cases")


if __name__ == "__main__":
    main()
