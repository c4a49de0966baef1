//! Kernel uevent messages: a borrowing parser and the NVMe/FC events the daemon acts on.
//!
//! A message is `ACTION@DEVPATH\0KEY=VALUE\0...KEY=VALUE\0`. Nothing is copied or allocated: a
//! [`Uevent`] borrows the receive buffer and [`Uevent::get`] scans it for one key. Only the header has
//! to be UTF-8; a field that is not is simply never matched, so one odd byte from a driver cannot hide
//! the rest of the message.
//!
//! # References
//! - lib/kobject_uevent.c (message layout, `ACTION@DEVPATH` header, 2048-byte environment)
//! - drivers/nvme/host/core.c (`nvme_class_uevent`: `NVME_TRTYPE`.. `NVME_HOST_IFACE`; `NVME_AEN`,
//!   `NVME_EVENT=connected`, `NVME_EVENT=rediscover`)
//! - drivers/nvme/host/fc.c (`FC_EVENT=nvmediscovery`, `NVMEFC_HOST_TRADDR`, `NVMEFC_TRADDR`)
//! - NVMe base specification, Asynchronous Event Request completion (type 2 notice, info 0xf0, log 0x70)

use std::fmt;

use crate::addr::{Transport, TransportAddr, unset_to_empty};

/// `NVME_AEN` value of a Discovery Log Page Change notice: log page 0x70, info 0xf0, type 2 (notice).
pub const AEN_DISCOVERY_LOG_CHANGE: u32 = 0x0070_f002;

/// Why a received message is not a uevent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    /// The kernel ends every field, the last one included, with NUL.
    NotNulTerminated,
    /// The first field has no `@/` (userspace senders such as libudev use other headers).
    NoHeader,
    HeaderNotUtf8,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::Empty => "empty message",
            Malformed::NotNulTerminated => "message is not NUL-terminated",
            Malformed::NoHeader => "no ACTION@DEVPATH header",
            Malformed::HeaderNotUtf8 => "ACTION@DEVPATH header is not UTF-8",
        })
    }
}

/// One uevent message, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uevent<'a> {
    action: &'a str,
    devpath: &'a str,
    /// `KEY=VALUE\0` fields after the header, final NUL included.
    fields: &'a [u8],
}

impl<'a> Uevent<'a> {
    /// Check the framing and split off the header; fields are looked at only when asked for.
    pub fn parse(buf: &'a [u8]) -> Result<Uevent<'a>, Malformed> {
        let (&last, _) = buf.split_last().ok_or(Malformed::Empty)?;
        if last != 0 {
            return Err(Malformed::NotNulTerminated);
        }
        let header_len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let (header, rest) = buf.split_at(header_len);
        let at = header
            .windows(2)
            .position(|w| w == b"@/")
            .filter(|&at| at > 0)
            .ok_or(Malformed::NoHeader)?;
        let header = std::str::from_utf8(header).map_err(|_| Malformed::HeaderNotUtf8)?;
        let (action, devpath) = header.split_at(at);
        Ok(Uevent {
            action,
            devpath: devpath.get(1..).unwrap_or(""),
            // `rest` starts with the header's NUL.
            fields: rest.get(1..).unwrap_or(&[]),
        })
    }

    /// The value of the first field named exactly `key` whose value is UTF-8.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields
            .split(|&b| b == 0)
            .filter_map(|field| {
                let eq = field.iter().position(|&b| b == b'=')?;
                let (k, v) = field.split_at(eq);
                if k != key.as_bytes() {
                    return None;
                }
                std::str::from_utf8(v.get(1..)?).ok()
            })
            .next()
    }

    /// `add`, `remove`, `change`, ... from the header.
    pub fn action(&self) -> &'a str {
        self.action
    }

    /// The kobject path below /sys, from the header, starting with `/`.
    pub fn devpath(&self) -> &'a str {
        self.devpath
    }

    pub fn subsystem(&self) -> Option<&'a str> {
        self.get("SUBSYSTEM")
    }

    /// The kernel's event sequence number, for logs.
    pub fn seqnum(&self) -> Option<u64> {
        self.get("SEQNUM")?.parse().ok()
    }
}

/// The transport address a controller uevent carries, `none`/`(null)` already turned into "".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventAddr<'a> {
    pub transport: Transport,
    pub traddr: &'a str,
    pub trsvcid: &'a str,
    pub host_traddr: &'a str,
    pub host_iface: &'a str,
}

impl EventAddr<'_> {
    /// An owned connection-table key; the error names the field that is too long.
    pub fn to_addr(&self) -> Result<TransportAddr, &'static str> {
        TransportAddr::new(
            self.transport,
            self.traddr,
            self.trsvcid,
            self.host_traddr,
            self.host_iface,
        )
    }
}

/// Same shape as [`TransportAddr`]'s Display, so log lines about one address look alike.
impl fmt::Display for EventAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let traddr = if self.traddr.is_empty() {
            "none"
        } else {
            self.traddr
        };
        write!(f, "{} traddr={}", self.transport, traddr)?;
        for (name, value) in [
            ("trsvcid", self.trsvcid),
            ("host_traddr", self.host_traddr),
            ("host_iface", self.host_iface),
        ] {
            if !value.is_empty() {
                write!(f, ",{name}={value}")?;
            }
        }
        Ok(())
    }
}

/// A uevent the daemon acts on. `ctrl` is the controller's device name, `nvme<N>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A discovery controller reported a discovery log change: re-read its log page.
    Aen {
        ctrl: &'a str,
        addr: EventAddr<'a>,
        aen: u32,
    },
    /// A discovery controller reconnected; changes while it was away were not announced.
    Rediscover {
        ctrl: &'a str,
        addr: EventAddr<'a>,
    },
    /// A controller became live (its sysfs attributes are now readable).
    Connected {
        ctrl: &'a str,
        addr: EventAddr<'a>,
    },
    CtrlAdd {
        ctrl: &'a str,
        addr: EventAddr<'a>,
    },
    CtrlRemove {
        ctrl: &'a str,
        addr: EventAddr<'a>,
    },
    /// The FC transport found a remote port that offers NVMe discovery.
    FcDiscovery {
        host_traddr: &'a str,
        traddr: &'a str,
    },
}

impl<'a> Event<'a> {
    /// The controller the event is about; `None` for FC port events.
    pub fn ctrl(&self) -> Option<&'a str> {
        match *self {
            Event::Aen { ctrl, .. }
            | Event::Rediscover { ctrl, .. }
            | Event::Connected { ctrl, .. }
            | Event::CtrlAdd { ctrl, .. }
            | Event::CtrlRemove { ctrl, .. } => Some(ctrl),
            Event::FcDiscovery { .. } => None,
        }
    }

    /// The controller's transport address; `None` for FC port events.
    pub fn addr(&self) -> Option<&EventAddr<'a>> {
        match self {
            Event::Aen { addr, .. }
            | Event::Rediscover { addr, .. }
            | Event::Connected { addr, .. }
            | Event::CtrlAdd { addr, .. }
            | Event::CtrlRemove { addr, .. } => Some(addr),
            Event::FcDiscovery { .. } => None,
        }
    }
}

/// The short, stable form used in logs and matched by the VM tests; do not reword lightly.
impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, ctrl, addr) = match self {
            Event::Aen { ctrl, addr, .. } => ("aen", ctrl, addr),
            Event::Rediscover { ctrl, addr } => ("rediscover", ctrl, addr),
            Event::Connected { ctrl, addr } => ("connected", ctrl, addr),
            Event::CtrlAdd { ctrl, addr } => ("ctrl-add", ctrl, addr),
            Event::CtrlRemove { ctrl, addr } => ("ctrl-remove", ctrl, addr),
            Event::FcDiscovery {
                host_traddr,
                traddr,
            } => return write!(f, "fc-discovery host_traddr={host_traddr} traddr={traddr}"),
        };
        write!(f, "{name} {ctrl} {addr}")
    }
}

/// What a uevent means to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified<'a> {
    Event(Event<'a>),
    /// Not about a fabrics controller or an FC discovery port, or nothing to do.
    Ignored,
    /// It is one of ours but a field is wrong; the reason names the field.
    Invalid(&'static str),
}

/// Decide what a uevent means. Cheap for the many unrelated ones: SUBSYSTEM is looked at first.
pub fn classify<'a>(u: &Uevent<'a>) -> Classified<'a> {
    match u.subsystem() {
        Some("nvme") => classify_nvme(u),
        Some("fc") => classify_fc(u),
        _ => Classified::Ignored,
    }
}

/// The kinds of controller event, before the address is checked.
enum NvmeKind {
    Aen(u32),
    Rediscover,
    Connected,
    Add,
    Remove,
}

fn nvme_kind(u: &Uevent<'_>) -> Result<Option<NvmeKind>, &'static str> {
    Ok(match u.action() {
        "add" => Some(NvmeKind::Add),
        "remove" => Some(NvmeKind::Remove),
        "change" => match (u.get("NVME_AEN"), u.get("NVME_EVENT")) {
            (Some(aen), _) => match parse_aen(aen) {
                Some(AEN_DISCOVERY_LOG_CHANGE) => Some(NvmeKind::Aen(AEN_DISCOVERY_LOG_CHANGE)),
                Some(_) => None,
                None => return Err("NVME_AEN is not a hex number"),
            },
            (None, Some("rediscover")) => Some(NvmeKind::Rediscover),
            (None, Some("connected")) => Some(NvmeKind::Connected),
            (None, _) => None,
        },
        _ => None,
    })
}

fn classify_nvme<'a>(u: &Uevent<'a>) -> Classified<'a> {
    let kind = match nvme_kind(u) {
        Ok(Some(kind)) => kind,
        Ok(None) => return Classified::Ignored,
        Err(why) => return Classified::Invalid(why),
    };
    // The kernel names every controller's transport (`pcie`, `apple-nvme` too) but adds the
    // address fields only for fabrics ones; any other transport is not ours.
    let Some(transport) = u.get("NVME_TRTYPE").and_then(Transport::from_name) else {
        return Classified::Ignored;
    };
    let ctrl = match u.get("DEVNAME") {
        Some(name) if is_ctrl_name(name) => name,
        Some(_) => return Classified::Invalid("DEVNAME is not nvme<N>"),
        None => return Classified::Invalid("DEVNAME missing"),
    };
    // Sent together with NVME_TRTYPE since it exists; NVME_HOST_IFACE came later (5.14).
    let Some(traddr) = u.get("NVME_TRADDR") else {
        return Classified::Invalid("NVME_TRADDR missing");
    };
    let field = |key| unset_to_empty(u.get(key).unwrap_or(""));
    let addr = EventAddr {
        transport,
        traddr: unset_to_empty(traddr),
        trsvcid: field("NVME_TRSVCID"),
        host_traddr: field("NVME_HOST_TRADDR"),
        host_iface: field("NVME_HOST_IFACE"),
    };
    Classified::Event(match kind {
        NvmeKind::Aen(aen) => Event::Aen { ctrl, addr, aen },
        NvmeKind::Rediscover => Event::Rediscover { ctrl, addr },
        NvmeKind::Connected => Event::Connected { ctrl, addr },
        NvmeKind::Add => Event::CtrlAdd { ctrl, addr },
        NvmeKind::Remove => Event::CtrlRemove { ctrl, addr },
    })
}

fn classify_fc<'a>(u: &Uevent<'a>) -> Classified<'a> {
    if u.action() != "change" || u.get("FC_EVENT") != Some("nvmediscovery") {
        return Classified::Ignored;
    }
    let Some(host_traddr) = u.get("NVMEFC_HOST_TRADDR").filter(|a| is_fc_addr(a)) else {
        return Classified::Invalid("NVMEFC_HOST_TRADDR is not nn-0x<16 hex>:pn-0x<16 hex>");
    };
    let Some(traddr) = u.get("NVMEFC_TRADDR").filter(|a| is_fc_addr(a)) else {
        return Classified::Invalid("NVMEFC_TRADDR is not nn-0x<16 hex>:pn-0x<16 hex>");
    };
    Classified::Event(Event::FcDiscovery {
        host_traddr,
        traddr,
    })
}

/// The kernel prints `%#08x`, e.g. `0x70f002`.
fn parse_aen(s: &str) -> Option<u32> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// `nvme<N>`: a controller, not a namespace (`nvme0n1`) or the fabrics device (`nvme-fabrics`).
fn is_ctrl_name(s: &str) -> bool {
    s.strip_prefix("nvme")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `nn-0x<16 hex>:pn-0x<16 hex>`, the WWNN/WWPN pair FC uses as a transport address.
fn is_fc_addr(s: &str) -> bool {
    let wwn = |part: &str, prefix: &str| {
        part.strip_prefix(prefix)
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    s.split_once(':')
        .is_some_and(|(nn, pn)| wwn(nn, "nn-0x") && wwn(pn, "pn-0x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AEN: &[u8] = include_bytes!("../tests/data/uevent-aen.bin");
    const REDISCOVER: &[u8] = include_bytes!("../tests/data/uevent-rediscover.bin");
    const CONNECTED: &[u8] = include_bytes!("../tests/data/uevent-connected.bin");
    const CONNECTED_LOOP: &[u8] = include_bytes!("../tests/data/uevent-connected-loop.bin");
    const CTRL_ADD: &[u8] = include_bytes!("../tests/data/uevent-ctrl-add.bin");
    const CTRL_REMOVE: &[u8] = include_bytes!("../tests/data/uevent-ctrl-remove.bin");
    const FC: &[u8] = include_bytes!("../tests/data/uevent-fc-nvmediscovery.bin");
    const UNRELATED: &[u8] = include_bytes!("../tests/data/uevent-unrelated.bin");
    const ALL: &[u8] = include_bytes!("../tests/data/uevent-all.bin");

    const TCP: EventAddr<'static> = EventAddr {
        transport: Transport::Tcp,
        traddr: "127.0.0.1",
        trsvcid: "4420",
        host_traddr: "",
        host_iface: "",
    };

    /// Hand-made payloads, framed as the kernel frames them: every field NUL-terminated.
    fn msg(fields: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for f in fields {
            v.extend_from_slice(f.as_bytes());
            v.push(0);
        }
        v
    }

    fn event(buf: &[u8]) -> Event<'_> {
        match classify(&Uevent::parse(buf).unwrap()) {
            Classified::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        }
    }

    fn class(buf: &[u8]) -> Classified<'_> {
        classify(&Uevent::parse(buf).unwrap())
    }

    /// An nvme controller `change` uevent with the given extra fields, like the kernel sends.
    fn nvme_change(extra: &[&str]) -> Vec<u8> {
        let mut fields = vec![
            "change@/devices/virtual/nvme-fabrics/ctl/nvme3",
            "ACTION=change",
            "SUBSYSTEM=nvme",
        ];
        fields.extend_from_slice(extra);
        msg(&fields)
    }

    #[test]
    fn aen_fixture() {
        let u = Uevent::parse(AEN).unwrap();
        assert_eq!(u.action(), "change");
        assert_eq!(u.devpath(), "/devices/virtual/nvme-fabrics/ctl/nvme0");
        assert_eq!(u.subsystem(), Some("nvme"));
        assert_eq!(u.seqnum(), Some(747));
        let e = event(AEN);
        assert_eq!(
            e,
            Event::Aen {
                ctrl: "nvme0",
                addr: TCP,
                aen: AEN_DISCOVERY_LOG_CHANGE
            }
        );
        assert_eq!(e.to_string(), "aen nvme0 tcp traddr=127.0.0.1,trsvcid=4420");
    }

    #[test]
    fn controller_fixtures() {
        for (buf, want, text) in [
            (
                REDISCOVER,
                Event::Rediscover {
                    ctrl: "nvme0",
                    addr: TCP,
                },
                "rediscover nvme0 tcp traddr=127.0.0.1,trsvcid=4420",
            ),
            (
                CONNECTED,
                Event::Connected {
                    ctrl: "nvme0",
                    addr: TCP,
                },
                "connected nvme0 tcp traddr=127.0.0.1,trsvcid=4420",
            ),
            (
                CTRL_ADD,
                Event::CtrlAdd {
                    ctrl: "nvme0",
                    addr: TCP,
                },
                "ctrl-add nvme0 tcp traddr=127.0.0.1,trsvcid=4420",
            ),
            (
                CTRL_REMOVE,
                Event::CtrlRemove {
                    ctrl: "nvme0",
                    addr: TCP,
                },
                "ctrl-remove nvme0 tcp traddr=127.0.0.1,trsvcid=4420",
            ),
        ] {
            let e = event(buf);
            assert_eq!(e, want);
            assert_eq!(e.to_string(), text);
            assert_eq!(e.ctrl(), Some("nvme0"));
        }
    }

    #[test]
    fn loop_null_traddr_is_unset() {
        let e = event(CONNECTED_LOOP);
        let addr = *e.addr().unwrap();
        assert_eq!(
            addr,
            EventAddr {
                transport: Transport::Loop,
                traddr: "",
                trsvcid: "",
                host_traddr: "",
                host_iface: "",
            }
        );
        assert_eq!(e.to_string(), "connected nvme0 loop traddr=none");
        let key = addr.to_addr().unwrap();
        assert!(key.traddr.is_empty() && key.transport == Transport::Loop);
        assert!(key.trsvcid.is_empty() && key.host_traddr.is_empty() && key.host_iface.is_empty());
    }

    #[test]
    fn event_addr_to_table_key() {
        let key = TCP.to_addr().unwrap();
        assert_eq!(
            key,
            TransportAddr::new(Transport::Tcp, "127.0.0.1", "4420", "", "").unwrap()
        );
        let long = "1".repeat(300);
        let too_long = EventAddr {
            traddr: &long,
            ..TCP
        };
        assert_eq!(too_long.to_addr(), Err("traddr"));
    }

    #[test]
    fn fc_fixture() {
        let e = event(FC);
        assert_eq!(
            e,
            Event::FcDiscovery {
                host_traddr: "nn-0x10001100aa000001:pn-0x20001100aa000001",
                traddr: "nn-0x10001100ab000001:pn-0x20001100ab000001",
            }
        );
        assert_eq!(
            e.to_string(),
            "fc-discovery host_traddr=nn-0x10001100aa000001:pn-0x20001100aa000001 \
             traddr=nn-0x10001100ab000001:pn-0x20001100ab000001"
        );
        assert_eq!((e.ctrl(), e.addr()), (None, None));
    }

    #[test]
    fn namespace_block_device_is_ignored() {
        let u = Uevent::parse(UNRELATED).unwrap();
        assert_eq!(u.get("DEVNAME"), Some("nvme1n1"));
        assert_eq!(classify(&u), Classified::Ignored);
    }

    /// Each payload of uevent-all.bin, in capture order.
    fn capture() -> Vec<&'static [u8]> {
        let mut out = Vec::new();
        let mut rest = ALL;
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let (payload, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
            out.push(payload);
            rest = tail;
        }
        assert!(rest.is_empty());
        out
    }

    #[test]
    fn whole_capture_classifies_as_recorded() {
        let payloads = capture();
        assert_eq!(payloads.len(), 89);
        // [aen, rediscover, connected, ctrl-add, ctrl-remove, fc-discovery, ignored]
        let mut counts = [0; 7];
        for p in payloads {
            let u = Uevent::parse(p).unwrap();
            assert!(u.seqnum().is_some(), "{u:?}");
            let i = match classify(&u) {
                Classified::Event(Event::Aen { .. }) => 0,
                Classified::Event(Event::Rediscover { .. }) => 1,
                Classified::Event(Event::Connected { .. }) => 2,
                Classified::Event(Event::CtrlAdd { .. }) => 3,
                Classified::Event(Event::CtrlRemove { .. }) => 4,
                Classified::Event(Event::FcDiscovery { .. }) => 5,
                Classified::Ignored => 6,
                Classified::Invalid(why) => panic!("{why}: {u:?}"),
            };
            counts[i] += 1;
        }
        assert_eq!(counts, [2, 1, 12, 11, 11, 2, 50]);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(Uevent::parse(b""), Err(Malformed::Empty));
        assert_eq!(
            Uevent::parse(b"add@/devices/x\0ACTION=add"),
            Err(Malformed::NotNulTerminated)
        );
        assert_eq!(
            Uevent::parse(b"libudev\0ACTION=add\0"),
            Err(Malformed::NoHeader)
        );
        assert_eq!(Uevent::parse(b"\0"), Err(Malformed::NoHeader));
        assert_eq!(Uevent::parse(b"@/devices/x\0"), Err(Malformed::NoHeader));
        assert_eq!(
            Uevent::parse(b"add\xff@/devices/x\0"),
            Err(Malformed::HeaderNotUtf8)
        );
        assert_eq!(Malformed::NoHeader.to_string(), "no ACTION@DEVPATH header");
    }

    #[test]
    fn header_only_message_has_no_fields() {
        let u = Uevent::parse(b"add@/module/nvme\0").unwrap();
        assert_eq!((u.action(), u.devpath()), ("add", "/module/nvme"));
        assert_eq!(u.subsystem(), None);
        assert_eq!(classify(&u), Classified::Ignored);
    }

    #[test]
    fn fields_match_exact_keys_split_at_first_equals() {
        let buf = msg(&[
            "change@/devices/x",
            "NOEQUALS",
            "SUBSYSTEMX=fc",
            "SUBSYS=fc",
            "SUBSYSTEM=nvme",
            "HOSTNQN=nqn.x:uuid=1=2",
            "EMPTY=",
        ]);
        let u = Uevent::parse(&buf).unwrap();
        assert_eq!(u.subsystem(), Some("nvme"));
        assert_eq!(u.get("HOSTNQN"), Some("nqn.x:uuid=1=2"));
        assert_eq!(u.get("EMPTY"), Some(""));
        assert_eq!(u.get("NOEQUALS"), None);
        assert_eq!(u.get(""), None);
    }

    #[test]
    fn non_utf8_field_is_not_matchable_but_others_are() {
        let mut buf = b"change@/devices/x\0BAD=\xff\xfe\0".to_vec();
        buf.extend_from_slice(b"\xc3=1\0SUBSYSTEM=fc\0");
        let u = Uevent::parse(&buf).unwrap();
        assert_eq!(u.get("BAD"), None);
        assert_eq!(u.subsystem(), Some("fc"));
        assert_eq!(classify(&u), Classified::Ignored);
    }

    /// xorshift64: deterministic pseudo-random numbers for the junk tests.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn junk_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut junk = vec![0u8; 8192];
        let mut parsed = 0;
        for _ in 0..64 {
            // NUL and '=' often enough that there are many short fields to look at.
            for b in junk.iter_mut() {
                let r = next(&mut x);
                *b = [0, b'=', (r >> 8) as u8][(r % 3) as usize];
            }
            junk[..10].copy_from_slice(b"change@/x\0");
            *junk.last_mut().unwrap() = 0;
            if let Ok(u) = Uevent::parse(&junk) {
                parsed += 1;
                let _ = classify(&u);
            }
        }
        assert_eq!(parsed, 64);
        assert_eq!(
            Uevent::parse(&[b'a'; 8192]),
            Err(Malformed::NotNulTerminated)
        );
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for fixture in [AEN, CONNECTED_LOOP, FC, UNRELATED] {
            for end in 0..fixture.len() {
                if let Ok(u) = Uevent::parse(&fixture[..end]) {
                    let _ = classify(&u);
                }
            }
            let mut buf = fixture.to_vec();
            for _ in 0..2000 {
                let r = next(&mut x);
                let i = (r as usize >> 16) % buf.len();
                buf[i] = [0, b'=', b'@', b'/', 0xff, r as u8][(r % 6) as usize];
                if let Ok(Classified::Event(e)) = Uevent::parse(&buf).map(|u| classify(&u)) {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn bad_devname_is_invalid() {
        for name in [
            "DEVNAME=nvme0n1",
            "DEVNAME=nvme",
            "DEVNAME=nvme-fabrics",
            "DEVNAME=sda",
        ] {
            let buf = nvme_change(&[
                "NVME_EVENT=connected",
                name,
                "NVME_TRTYPE=tcp",
                "NVME_TRADDR=a",
            ]);
            assert_eq!(
                class(&buf),
                Classified::Invalid("DEVNAME is not nvme<N>"),
                "{name}"
            );
        }
        let buf = nvme_change(&["NVME_EVENT=connected", "NVME_TRTYPE=tcp", "NVME_TRADDR=a"]);
        assert_eq!(class(&buf), Classified::Invalid("DEVNAME missing"));
    }

    #[test]
    fn pcie_controller_is_ignored() {
        let buf = nvme_change(&["NVME_EVENT=connected", "DEVNAME=nvme0"]);
        assert_eq!(class(&buf), Classified::Ignored);
        // What the kernel really sends for a local drive: its transport name, no address.
        let buf = nvme_change(&["NVME_EVENT=connected", "DEVNAME=nvme0", "NVME_TRTYPE=pcie"]);
        assert_eq!(class(&buf), Classified::Ignored);
    }

    #[test]
    fn unknown_transport_is_ignored_and_missing_traddr_invalid() {
        let buf = nvme_change(&["NVME_EVENT=connected", "DEVNAME=nvme3", "NVME_TRTYPE=xyz"]);
        assert_eq!(class(&buf), Classified::Ignored);
        let buf = nvme_change(&["NVME_EVENT=connected", "DEVNAME=nvme3", "NVME_TRTYPE=tcp"]);
        assert_eq!(class(&buf), Classified::Invalid("NVME_TRADDR missing"));
    }

    #[test]
    fn pre_host_iface_kernel_still_classifies() {
        let buf = nvme_change(&[
            "NVME_EVENT=rediscover",
            "DEVNAME=nvme3",
            "NVME_TRTYPE=rdma",
            "NVME_TRADDR=10.0.0.1",
            "NVME_TRSVCID=4420",
            "NVME_HOST_TRADDR=10.0.0.2",
        ]);
        assert_eq!(
            event(&buf).to_string(),
            "rediscover nvme3 rdma traddr=10.0.0.1,trsvcid=4420,host_traddr=10.0.0.2"
        );
    }

    #[test]
    fn other_aens_and_events_are_ignored() {
        let addr = ["DEVNAME=nvme3", "NVME_TRTYPE=tcp", "NVME_TRADDR=a"];
        for extra in ["NVME_AEN=0x000002", "NVME_EVENT=discovery", "NVME_OTHER=1"] {
            let fields: Vec<&str> = [extra].iter().chain(&addr).copied().collect();
            assert_eq!(class(&nvme_change(&fields)), Classified::Ignored, "{extra}");
        }
        let fields: Vec<&str> = ["NVME_AEN=70f002"].iter().chain(&addr).copied().collect();
        assert_eq!(
            class(&nvme_change(&fields)),
            Classified::Invalid("NVME_AEN is not a hex number")
        );
        let buf = msg(&["bind@/devices/x", "SUBSYSTEM=nvme", "DEVNAME=nvme3"]);
        assert_eq!(class(&buf), Classified::Ignored);
    }

    #[test]
    fn bad_fc_address_is_invalid() {
        let good = "nn-0x10001100aa000001:pn-0x20001100aa000001";
        for bad in [
            "",
            "nn-0x10001100aa00000:pn-0x20001100aa000001",
            "nn-0x10001100aa000001:pn-0x20001100aa00000g",
            "nn-0x10001100aa000001-pn-0x20001100aa000001",
            "pn-0x10001100aa000001:nn-0x20001100aa000001",
            "nn-0x10001100aa000001:pn-0x20001100aa000001:",
        ] {
            let host = format!("NVMEFC_HOST_TRADDR={good}");
            let target = format!("NVMEFC_TRADDR={bad}");
            let buf = msg(&[
                "change@/devices/virtual/fc/fc_udev_device",
                "SUBSYSTEM=fc",
                "FC_EVENT=nvmediscovery",
                &host,
                &target,
            ]);
            assert!(
                matches!(class(&buf), Classified::Invalid(w) if w.starts_with("NVMEFC_TRADDR")),
                "{bad}"
            );
        }
        assert!(!is_fc_addr("NN-0x10001100AA000001:pn-0x20001100AA000001"));
        assert!(is_fc_addr("nn-0x10001100AA000001:pn-0x20001100AA000001"));
    }

    #[test]
    fn fc_add_of_udev_device_is_ignored() {
        let buf = msg(&["add@/devices/virtual/fc/fc_udev_device", "SUBSYSTEM=fc"]);
        assert_eq!(class(&buf), Classified::Ignored);
    }

    #[test]
    fn aen_values() {
        assert_eq!(parse_aen("0x70f002"), Some(AEN_DISCOVERY_LOG_CHANGE));
        assert_eq!(parse_aen("0X0070F002"), Some(AEN_DISCOVERY_LOG_CHANGE));
        for bad in ["", "0x", "0x+1", "0x123456789", "70f002", "0x70f0g2"] {
            assert_eq!(parse_aen(bad), None, "{bad}");
        }
    }
}
