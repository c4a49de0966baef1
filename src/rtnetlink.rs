//! rtnetlink: the host's links and addresses, and the changes to them the kernel announces.
//!
//! A NETLINK_ROUTE socket joined to the link and IPv4/IPv6 address groups sits in the daemon's
//! poll loop. [`parse`] turns a datagram into messages (pure, over `&[u8]`); [`NetView`] keeps
//! what they say, bounded, and tells which changes make a path ready: an address that can be
//! used (not tentative: IPv6 duplicate address detection is over), a link that came up, a link
//! that appeared (so MAC matches are looked for again).
//!
//! # References (facts used)
//! - netlink(7): `nlmsghdr` (u32 len, u16 type, u16 flags, u32 seq, u32 pid), 4-byte alignment,
//!   NLMSG_DONE (3) ends a dump, NLMSG_ERROR (2) carries a negative errno, ENOBUFS on overrun
//! - rtnetlink(7): RTM_NEWLINK 16, RTM_DELLINK 17, RTM_GETLINK 18, RTM_NEWADDR 20, RTM_DELADDR 21,
//!   RTM_GETADDR 22; `ifinfomsg` (16 bytes: family, pad, type, index, flags, change), `ifaddrmsg`
//!   (8 bytes: family, prefixlen, flags, scope, index); `rtattr` (u16 len, u16 type)
//! - include/uapi/linux/if_link.h: IFLA_ADDRESS 1, IFLA_IFNAME 3, IFLA_LINK 5, IFLA_LINKINFO 18,
//!   IFLA_INFO_KIND 1, IFLA_INFO_DATA 2, IFLA_VLAN_ID 1
//! - include/uapi/linux/if_addr.h: IFA_ADDRESS 1, IFA_LOCAL 2, IFA_FLAGS 8 (u32, supersedes the
//!   8-bit `ifa_flags`), IFA_F_DADFAILED 0x08, IFA_F_TENTATIVE 0x40
//! - include/uapi/linux/rtnetlink.h: RTMGRP_LINK 1, RTMGRP_IPV4_IFADDR 0x10, RTMGRP_IPV6_IFADDR 0x100
//! - net/ipv6/addrconf.c: an address is announced with IFA_F_TENTATIVE while DAD runs, and again
//!   (RTM_NEWADDR) without it when DAD succeeds; interfaces with IFF_NOARP skip DAD

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, sockopt};

use crate::error::{Context, Error, Result};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 1;
const AF_UNSPEC: u8 = 0;
const NLM_F_DUMP: u16 = 0x300;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VLAN_ID: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_TENTATIVE: u32 = 0x40;

const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;

/// Nested attributes (IFLA_LINKINFO) have this bit set on some kernels.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The multicast groups joined: links, IPv4 addresses, IPv6 addresses.
pub const GROUPS: u32 = 0x1 | 0x10 | 0x100;

/// How many links and addresses the view holds (no growth per event past that).
/// A container host has hundreds of veth links; the HFIs are among the first.
pub const MAX_LINKS: usize = 512;
pub const MAX_ADDRS: usize = 2048;

/// A network interface as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// IFLA_ADDRESS when it is a 6-byte (Ethernet) address.
    pub mac: Option<[u8; 6]>,
    /// The VLAN id, for a VLAN interface.
    pub vlan: Option<u16>,
    /// IFLA_LINK: the interface it sits on (a VLAN's parent).
    pub parent: Option<u32>,
    pub up: bool,
    pub lower_up: bool,
}

/// An address on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// Duplicate address detection still runs: not usable yet.
    pub tentative: bool,
    /// DAD found a duplicate: never usable.
    pub dad_failed: bool,
}

impl IfAddr {
    pub fn usable(&self) -> bool {
        !self.tentative && !self.dad_failed
    }
}

/// One message of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtMsg {
    Link(Link),
    LinkGone {
        ifindex: u32,
    },
    Addr(IfAddr),
    AddrGone(IfAddr),
    /// The end of a dump.
    Done,
    /// NLMSG_ERROR with this (positive) errno; 0 is an acknowledgement.
    Error(i32),
}

/// A datagram that is not what rtnetlink sends: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub why: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rtnetlink message at byte {}: {}", self.offset, self.why)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Where `part`, a subslice of `whole`, starts in it (so a nested attribute's error names its
/// place in the datagram).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// The attributes in `b` (`base` is where `b` starts in the datagram, for errors).
fn attrs(b: &[u8], base: usize) -> std::result::Result<Vec<(u16, &[u8])>, ParseError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= b.len() {
        let len = usize::from(u16_at(b, at).unwrap_or(0));
        let kind = u16_at(b, at + 2).unwrap_or(0) & NLA_TYPE_MASK;
        if len < 4 {
            return Err(ParseError {
                offset: base + at,
                why: format!("rta_len {len} is shorter than the attribute header"),
            });
        }
        let Some(payload) = b.get(at + 4..at + len) else {
            return Err(ParseError {
                offset: base + at,
                why: format!(
                    "rta_len {len} of attribute {kind} runs past the message ({} bytes left)",
                    b.len() - at
                ),
            });
        };
        out.push((kind, payload));
        at += align4(len);
    }
    Ok(out)
}

fn ip_of(family: u8, b: &[u8]) -> Option<IpAddr> {
    match (family, b.len()) {
        (2, 4) => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        (10, 16) => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn parse_link(body: &[u8], base: usize) -> std::result::Result<Link, ParseError> {
    if body.len() < 16 {
        return Err(ParseError {
            // The message's own header: a body that is too short starts nowhere.
            offset: base - NLMSG_HDRLEN,
            why: format!("ifinfomsg needs 16 bytes, the message has {}", body.len()),
        });
    }
    let ifindex = u32_at(body, 4).unwrap_or(0);
    let flags = u32_at(body, 8).unwrap_or(0);
    let mut link = Link {
        ifindex,
        name: String::new(),
        mac: None,
        vlan: None,
        parent: None,
        up: flags & IFF_UP != 0,
        lower_up: flags & IFF_LOWER_UP != 0,
    };
    for (kind, v) in attrs(&body[16..], base + 16)? {
        match kind {
            IFLA_IFNAME => {
                let name = v.split(|&c| c == 0).next().unwrap_or_default();
                link.name = String::from_utf8_lossy(name).into_owned();
            }
            IFLA_ADDRESS => link.mac = v.try_into().ok(),
            IFLA_LINK => link.parent = v.try_into().ok().map(u32::from_ne_bytes),
            IFLA_LINKINFO => {
                let info = attrs(v, base + offset_in(body, v))?;
                let is_vlan = info.iter().any(|(k, v)| {
                    *k == IFLA_INFO_KIND && v.split(|&c| c == 0).next() == Some(b"vlan")
                });
                if is_vlan {
                    for (k, data) in &info {
                        if *k == IFLA_INFO_DATA {
                            for (dk, dv) in attrs(data, base + offset_in(body, data))? {
                                if dk == IFLA_VLAN_ID {
                                    link.vlan = dv.try_into().ok().map(u16::from_ne_bytes);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

fn parse_addr(body: &[u8], base: usize) -> std::result::Result<Option<IfAddr>, ParseError> {
    if body.len() < 8 {
        return Err(ParseError {
            offset: base - NLMSG_HDRLEN,
            why: format!("ifaddrmsg needs 8 bytes, the message has {}", body.len()),
        });
    }
    let family = body[0];
    let prefix = body[1];
    let mut flags = u32::from(body[2]);
    let ifindex = u32_at(body, 4).unwrap_or(0);
    let (mut address, mut local) = (None, None);
    for (kind, v) in attrs(&body[8..], base + 8)? {
        match kind {
            IFA_ADDRESS => address = ip_of(family, v),
            IFA_LOCAL => local = ip_of(family, v),
            IFA_FLAGS => {
                if let Some(f) = v.try_into().ok().map(u32::from_ne_bytes) {
                    flags = f;
                }
            }
            _ => {}
        }
    }
    // IPv4: IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on a
    // point-to-point link); IPv6 gives IFA_ADDRESS only, unless it is point-to-point too.
    let Some(addr) = local.or(address) else {
        return Ok(None);
    };
    Ok(Some(IfAddr {
        ifindex,
        addr,
        prefix,
        tentative: flags & IFA_F_TENTATIVE != 0,
        dad_failed: flags & IFA_F_DADFAILED != 0,
    }))
}

/// The messages of one datagram, appended to `out`. On a malformed message the ones before it
/// are in `out` and the error says where it is.
pub fn parse(buf: &[u8], out: &mut Vec<RtMsg>) -> std::result::Result<(), ParseError> {
    let mut at = 0;
    while at < buf.len() {
        let err = |why: String| ParseError { offset: at, why };
        if buf.len() - at < NLMSG_HDRLEN {
            return Err(err(format!(
                "{} bytes left, less than a netlink header",
                buf.len() - at
            )));
        }
        let len = u32_at(buf, at).unwrap_or(0) as usize;
        let kind = u16_at(buf, at + 4).unwrap_or(0);
        if len < NLMSG_HDRLEN {
            return Err(err(format!("nlmsg_len {len} is shorter than its header")));
        }
        let Some(body) = buf.get(at + NLMSG_HDRLEN..at.saturating_add(len)) else {
            return Err(err(format!(
                "nlmsg_len {len} runs past the datagram ({} bytes left)",
                buf.len() - at
            )));
        };
        let base = at + NLMSG_HDRLEN;
        match kind {
            NLMSG_DONE => out.push(RtMsg::Done),
            NLMSG_ERROR => {
                // A negative errno; i32::MIN (nothing the kernel sends) must not overflow.
                let code = u32_at(body, 0).map_or(0, |c| c as i32);
                out.push(RtMsg::Error(code.saturating_neg()));
            }
            // Only the interface's own announcements (ifi_family AF_UNSPEC): a bridge sends
            // AF_BRIDGE NEWLINK/DELLINK for its ports to the same group, and a port leaving the
            // bridge is not the interface going away.
            RTM_NEWLINK | RTM_DELLINK if body.len() >= 16 && body[0] != AF_UNSPEC => {}
            RTM_NEWLINK => out.push(RtMsg::Link(parse_link(body, base)?)),
            RTM_DELLINK => out.push(RtMsg::LinkGone {
                ifindex: parse_link(body, base)?.ifindex,
            }),
            RTM_NEWADDR => {
                if let Some(a) = parse_addr(body, base)? {
                    out.push(RtMsg::Addr(a));
                }
            }
            RTM_DELADDR => {
                if let Some(a) = parse_addr(body, base)? {
                    out.push(RtMsg::AddrGone(a));
                }
            }
            _ => {}
        }
        at = at.saturating_add(align4(len));
    }
    Ok(())
}

/// What became ready: the reasons for a waiting path to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetChange {
    /// A usable address appeared on `ifindex` (new, or its DAD ended).
    AddrReady { ifindex: u32, addr: IpAddr },
    /// The link is now up with a carrier (IFF_UP and IFF_LOWER_UP).
    LinkUp { ifindex: u32 },
    /// An interface the view did not have: MAC matches may have changed.
    LinkAppeared { ifindex: u32 },
    /// The view is full: this link or address is not tracked (to be logged).
    Full,
}

/// The links and addresses the host has, as far as the messages told.
#[derive(Debug, Default, Clone)]
pub struct NetView {
    links: Vec<Link>,
    addrs: Vec<IfAddr>,
}

impl NetView {
    /// Take one message in; what became ready, if anything.
    pub fn apply(&mut self, msg: &RtMsg) -> Option<NetChange> {
        match msg {
            RtMsg::Link(l) => {
                let ready = |l: &Link| l.up && l.lower_up;
                let full = self.links.len() >= MAX_LINKS;
                match self.links.iter_mut().find(|x| x.ifindex == l.ifindex) {
                    Some(old) => {
                        let was = ready(old);
                        *old = l.clone();
                        (!was && ready(l)).then_some(NetChange::LinkUp { ifindex: l.ifindex })
                    }
                    None if full => Some(NetChange::Full),
                    None => {
                        self.links.push(l.clone());
                        Some(NetChange::LinkAppeared { ifindex: l.ifindex })
                    }
                }
            }
            RtMsg::LinkGone { ifindex } => {
                self.links.retain(|l| l.ifindex != *ifindex);
                self.addrs.retain(|a| a.ifindex != *ifindex);
                None
            }
            RtMsg::Addr(a) => {
                let full = self.addrs.len() >= MAX_ADDRS;
                match self
                    .addrs
                    .iter_mut()
                    .find(|x| x.ifindex == a.ifindex && x.addr == a.addr)
                {
                    Some(old) => {
                        let was = old.usable();
                        *old = *a;
                        (!was && a.usable()).then_some(NetChange::AddrReady {
                            ifindex: a.ifindex,
                            addr: a.addr,
                        })
                    }
                    None if full => Some(NetChange::Full),
                    None => {
                        self.addrs.push(*a);
                        a.usable().then_some(NetChange::AddrReady {
                            ifindex: a.ifindex,
                            addr: a.addr,
                        })
                    }
                }
            }
            RtMsg::AddrGone(a) => {
                self.addrs
                    .retain(|x| !(x.ifindex == a.ifindex && x.addr == a.addr));
                None
            }
            RtMsg::Done | RtMsg::Error(_) => None,
        }
    }

    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.ifindex == ifindex)
    }

    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The interface an HFI means: with `vlan` 0 the one with that MAC that is not a VLAN (of
    /// several, one that sits on no other link: the NIC itself rather than a macvlan or a bond
    /// member's master, by lowest ifindex among equals); with a VLAN id, the VLAN interface with
    /// that id whose own MAC or whose parent's MAC it is.
    pub fn iface_by_mac(&self, mac: [u8; 6], vlan: u16) -> Option<&Link> {
        if vlan == 0 {
            return self
                .links
                .iter()
                .filter(|l| l.mac == Some(mac) && l.vlan.is_none())
                .min_by_key(|l| (l.parent.is_some(), l.ifindex));
        }
        self.links
            .iter()
            .filter(|l| l.vlan == Some(vlan))
            .filter(|l| {
                l.mac == Some(mac)
                    || l.parent
                        .and_then(|p| self.link(p))
                        .is_some_and(|p| p.mac == Some(mac))
            })
            .min_by_key(|l| l.ifindex)
    }

    /// The interface holding `ip` as a usable address.
    pub fn addr_ready(&self, ip: IpAddr) -> Option<u32> {
        self.addrs
            .iter()
            .find(|a| a.addr == ip && a.usable())
            .map(|a| a.ifindex)
    }

    pub fn addr_ready_on(&self, ifindex: u32, ip: IpAddr) -> bool {
        self.addrs
            .iter()
            .any(|a| a.ifindex == ifindex && a.addr == ip && a.usable())
    }

    /// Any usable address of the family (`v6`) on the interface, link-local IPv6 aside.
    pub fn any_ready_on(&self, ifindex: u32, v6: bool) -> bool {
        self.addrs.iter().any(|a| {
            a.ifindex == ifindex
                && a.usable()
                && match a.addr {
                    IpAddr::V4(_) => !v6,
                    IpAddr::V6(x) => v6 && (x.segments()[0] & 0xffc0) != 0xfe80,
                }
        })
    }

    pub fn is_up(&self, ifindex: u32) -> bool {
        self.link(ifindex).is_some_and(|l| l.up && l.lower_up)
    }
}

/// The outcome of one non-blocking receive.
#[derive(Debug)]
pub enum RecvResult<'b> {
    Message(&'b [u8]),
    WouldBlock,
    /// ENOBUFS: changes were lost; dump again.
    Overflow,
    Err(Error),
}

/// The NETLINK_ROUTE socket, joined to [`GROUPS`].
pub struct RouteSocket {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

impl RouteSocket {
    pub fn open() -> Result<RouteSocket> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            // NETLINK_ROUTE is protocol 0, which rustix spells as no protocol.
            None,
        )
        .context(|| "open rtnetlink socket".into())?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, GROUPS))
            .context(|| "bind rtnetlink socket to the link and address groups".into())?;
        // Room for a burst (an interface with many addresses going up); an overrun is handled
        // by dumping again, so the default maximum is enough when the forced size is refused.
        let size = 1 << 20;
        if sockopt::set_socket_recv_buffer_size_force(&fd, size).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, size);
        }
        Ok(RouteSocket {
            fd,
            seq: std::cell::Cell::new(1),
        })
    }

    fn request(&self, kind: u16, what: &str) -> Result<()> {
        let seq = self.seq.get();
        self.seq.set(seq.wrapping_add(1));
        // nlmsghdr + a zeroed rtgenmsg-sized family header (AF_UNSPEC), padded to 4.
        const LEN: usize = NLMSG_HDRLEN + 4;
        let mut m = [0u8; LEN];
        m[0..4].copy_from_slice(&(LEN as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        rustix::net::sendto(
            &self.fd,
            &m,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .context(|| format!("ask rtnetlink for its {what}"))?;
        Ok(())
    }

    /// Ask for every link. One dump at a time per socket: ask for the addresses after this
    /// one's [`RtMsg::Done`].
    pub fn request_dump_links(&self) -> Result<()> {
        self.request(RTM_GETLINK, "links")
    }

    pub fn request_dump_addrs(&self) -> Result<()> {
        self.request(RTM_GETADDR, "addresses")
    }

    /// One datagram from the kernel (anything else on the socket is skipped).
    pub fn recv<'b>(&self, buf: &'b mut [u8]) -> RecvResult<'b> {
        loop {
            match rustix::net::recvfrom(&self.fd, &mut *buf, RecvFlags::TRUNC) {
                Ok((n, _, from)) => {
                    let from_kernel = from
                        .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                        .is_some_and(|a| a.pid() == 0);
                    if !from_kernel {
                        continue;
                    }
                    if n > buf.len() {
                        // Cut: what follows cannot be trusted; the caller dumps again.
                        return RecvResult::Overflow;
                    }
                    return RecvResult::Message(&buf[..n]);
                }
                Err(Errno::AGAIN) => return RecvResult::WouldBlock,
                Err(Errno::INTR) => continue,
                Err(Errno::NOBUFS) => return RecvResult::Overflow,
                Err(e) => return RecvResult::Err(Error::os("read the rtnetlink socket", e)),
            }
        }
    }
}

impl AsFd for RouteSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams captured on Linux 6.18 by tests/data/capture-rtnl.py (listed with what each
    /// holds in tests/data/rtnl-capture.txt): a veth pair nmcap0 (ifindex 6, 02:00:00:00:5e:01)
    /// and nmcap1 (5) made, given 192.0.2.10/24 and 2001:db8::10/64, brought up, deleted.
    const CAPTURED_EVENTS: [&[u8]; 19] = [
        include_bytes!("../tests/data/rtnl-events-00.bin"),
        include_bytes!("../tests/data/rtnl-events-01.bin"),
        include_bytes!("../tests/data/rtnl-events-02.bin"),
        include_bytes!("../tests/data/rtnl-events-03.bin"),
        include_bytes!("../tests/data/rtnl-events-04.bin"),
        include_bytes!("../tests/data/rtnl-events-05.bin"),
        include_bytes!("../tests/data/rtnl-events-06.bin"),
        include_bytes!("../tests/data/rtnl-events-07.bin"),
        include_bytes!("../tests/data/rtnl-events-08.bin"),
        include_bytes!("../tests/data/rtnl-events-09.bin"),
        include_bytes!("../tests/data/rtnl-events-10.bin"),
        include_bytes!("../tests/data/rtnl-events-11.bin"),
        include_bytes!("../tests/data/rtnl-events-12.bin"),
        include_bytes!("../tests/data/rtnl-events-13.bin"),
        include_bytes!("../tests/data/rtnl-events-14.bin"),
        include_bytes!("../tests/data/rtnl-events-15.bin"),
        include_bytes!("../tests/data/rtnl-events-16.bin"),
        include_bytes!("../tests/data/rtnl-events-17.bin"),
        include_bytes!("../tests/data/rtnl-events-18.bin"),
    ];

    #[test]
    fn captured_dumps_parse_whole() {
        let mut out = Vec::new();
        parse(
            include_bytes!("../tests/data/rtnl-dump-links.bin"),
            &mut out,
        )
        .unwrap();
        let RtMsg::Link(lo) = &out[0] else {
            panic!("the link dump starts with lo: {out:?}")
        };
        assert_eq!((lo.ifindex, lo.name.as_str(), lo.up), (1, "lo", true));
        assert_eq!(out.len(), 2);
        out.clear();
        parse(
            include_bytes!("../tests/data/rtnl-dump-addrs.bin"),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 5);
        assert!(out.contains(&RtMsg::Addr(IfAddr {
            ifindex: 1,
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            prefix: 8,
            tentative: false,
            dad_failed: false,
        })));
    }

    #[test]
    fn captured_veth_life_through_the_view() {
        let v4: IpAddr = "192.0.2.10".parse().unwrap();
        let v6: IpAddr = "2001:db8::10".parse().unwrap();
        let mut view = NetView::default();
        let mut changes = Vec::new();
        for (i, d) in CAPTURED_EVENTS.iter().enumerate() {
            let mut msgs = Vec::new();
            parse(d, &mut msgs).unwrap_or_else(|e| panic!("rtnl-events-{i:02}: {e}"));
            assert_eq!(msgs.len(), 1, "rtnl-events-{i:02}");
            if let Some(c) = view.apply(&msgs[0]) {
                changes.push((i, c));
            }
            if i == 3 {
                // Announced with IFA_F_TENTATIVE: DAD runs, the address is not usable yet.
                assert!(matches!(
                    msgs[0],
                    RtMsg::Addr(IfAddr {
                        tentative: true,
                        ..
                    })
                ));
                assert!(!view.addr_ready_on(6, v6));
                assert_eq!(view.addr_ready(v4), Some(6));
                let nmcap0 = view.iface_by_mac([2, 0, 0, 0, 0x5e, 1], 0).unwrap();
                assert_eq!((nmcap0.ifindex, nmcap0.name.as_str()), (6, "nmcap0"));
            }
        }
        use NetChange::*;
        assert_eq!(
            changes,
            [
                (0, LinkAppeared { ifindex: 5 }),
                (1, LinkAppeared { ifindex: 6 }),
                (
                    2,
                    AddrReady {
                        ifindex: 6,
                        addr: v4
                    }
                ),
                (5, LinkUp { ifindex: 6 }),
                (7, LinkUp { ifindex: 5 }),
                (
                    8,
                    AddrReady {
                        ifindex: 6,
                        addr: v6
                    }
                ),
                // The kernel announces the link-local addresses only once their DAD is over.
                (
                    9,
                    AddrReady {
                        ifindex: 5,
                        addr: "fe80::287d:8eff:fe1e:d02b".parse().unwrap()
                    }
                ),
                (
                    10,
                    AddrReady {
                        ifindex: 6,
                        addr: "fe80::ff:fe00:5e01".parse().unwrap()
                    }
                ),
            ]
        );
        // After the DELLINKs (the addresses went with DELADDRs before them) nothing of the pair
        // is left to match a path against.
        assert!(view.link(5).is_none() && view.link(6).is_none());
        assert_eq!(view.addr_ready(v4), None);
        assert!(view.iface_by_mac([2, 0, 0, 0, 0x5e, 1], 0).is_none());
    }

    /// A netlink message of `kind` with `body` (already padded).
    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        m
    }

    fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(v);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn link_msg(kind: u16, ifindex: u32, flags: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        b[8..12].copy_from_slice(&flags.to_ne_bytes());
        for a in attrs {
            b.extend_from_slice(a);
        }
        msg(kind, &b)
    }

    fn addr_msg(kind: u16, ifindex: u32, ip: IpAddr, flags: u32) -> Vec<u8> {
        let (family, bytes): (u8, Vec<u8>) = match ip {
            IpAddr::V4(a) => (2, a.octets().to_vec()),
            IpAddr::V6(a) => (10, a.octets().to_vec()),
        };
        let mut b = vec![family, 24, 0, 0];
        b.extend_from_slice(&ifindex.to_ne_bytes());
        b.extend_from_slice(&attr(IFA_ADDRESS, &bytes));
        if family == 2 {
            b.extend_from_slice(&attr(IFA_LOCAL, &bytes));
        }
        b.extend_from_slice(&attr(IFA_FLAGS, &flags.to_ne_bytes()));
        msg(kind, &b)
    }

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x4e, 0x42, 0x01];

    fn eth(ifindex: u32, name: &str, up: bool) -> Vec<u8> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        link_msg(
            RTM_NEWLINK,
            ifindex,
            if up { IFF_UP | IFF_LOWER_UP } else { 0 },
            &[attr(IFLA_IFNAME, &n), attr(IFLA_ADDRESS, &MAC)],
        )
    }

    fn vlan(ifindex: u32, parent: u32, id: u16) -> Vec<u8> {
        let data = attr(IFLA_VLAN_ID, &id.to_ne_bytes());
        let mut info = attr(IFLA_INFO_KIND, b"vlan\0");
        info.extend_from_slice(&attr(IFLA_INFO_DATA, &data));
        link_msg(
            RTM_NEWLINK,
            ifindex,
            IFF_UP | IFF_LOWER_UP,
            &[
                attr(IFLA_IFNAME, format!("eth0.{id}\0").as_bytes()),
                attr(IFLA_ADDRESS, &MAC),
                attr(IFLA_LINK, &parent.to_ne_bytes()),
                attr(IFLA_LINKINFO | 0x8000, &info),
            ],
        )
    }

    fn apply_all(v: &mut NetView, bytes: &[u8]) -> Vec<NetChange> {
        let mut msgs = Vec::new();
        parse(bytes, &mut msgs).unwrap();
        msgs.iter().filter_map(|m| v.apply(m)).collect()
    }

    #[test]
    fn links_and_vlans_are_found_by_mac() {
        let mut v = NetView::default();
        let mut d = eth(2, "eth0", true);
        d.extend(vlan(3, 2, 5));
        d.extend(msg(NLMSG_DONE, &[0; 4]));
        let ch = apply_all(&mut v, &d);
        assert_eq!(
            ch,
            vec![
                NetChange::LinkAppeared { ifindex: 2 },
                NetChange::LinkAppeared { ifindex: 3 }
            ]
        );
        assert_eq!(
            v.iface_by_mac(MAC, 0).map(|l| l.name.as_str()),
            Some("eth0")
        );
        assert_eq!(
            v.iface_by_mac(MAC, 5).map(|l| l.name.as_str()),
            Some("eth0.5")
        );
        assert_eq!(v.iface_by_mac(MAC, 6), None);
        assert_eq!(v.iface_by_mac([0; 6], 0), None);
        assert_eq!(v.link(3).unwrap().parent, Some(2));
        assert!(v.is_up(2));
    }

    #[test]
    fn a_link_coming_up_and_an_address_ending_dad_are_changes_once() {
        let mut v = NetView::default();
        apply_all(&mut v, &eth(2, "eth0", false));
        assert_eq!(
            apply_all(&mut v, &eth(2, "eth0", true)),
            vec![NetChange::LinkUp { ifindex: 2 }]
        );
        assert!(
            apply_all(&mut v, &eth(2, "eth0", true)).is_empty(),
            "no change"
        );
        let ip: IpAddr = "fd00::1".parse().unwrap();
        assert!(apply_all(&mut v, &addr_msg(RTM_NEWADDR, 2, ip, IFA_F_TENTATIVE)).is_empty());
        assert!(!v.addr_ready_on(2, ip) && v.addr_ready(ip).is_none());
        assert!(!v.any_ready_on(2, true));
        assert_eq!(
            apply_all(&mut v, &addr_msg(RTM_NEWADDR, 2, ip, 0)),
            vec![NetChange::AddrReady {
                ifindex: 2,
                addr: ip
            }]
        );
        assert!(v.addr_ready_on(2, ip) && v.any_ready_on(2, true) && !v.any_ready_on(2, false));
        let v4: IpAddr = "10.99.0.1".parse().unwrap();
        assert_eq!(
            apply_all(&mut v, &addr_msg(RTM_NEWADDR, 2, v4, 0x80)),
            vec![NetChange::AddrReady {
                ifindex: 2,
                addr: v4
            }]
        );
        assert_eq!(v.addr_ready(v4), Some(2));
        apply_all(&mut v, &addr_msg(RTM_DELADDR, 2, v4, 0));
        assert_eq!(v.addr_ready(v4), None);
        let bad: IpAddr = "fd00::2".parse().unwrap();
        assert!(apply_all(&mut v, &addr_msg(RTM_NEWADDR, 2, bad, IFA_F_DADFAILED)).is_empty());
        assert!(!v.addr_ready_on(2, bad));
        apply_all(&mut v, &link_msg(RTM_DELLINK, 2, 0, &[]));
        assert!(v.link(2).is_none() && !v.addr_ready_on(2, ip));
    }

    #[test]
    fn the_view_is_bounded() {
        let mut v = NetView::default();
        for i in 0..MAX_LINKS as u32 {
            apply_all(&mut v, &eth(i + 1, "x", true));
        }
        assert_eq!(
            apply_all(&mut v, &eth(1000, "y", true)),
            vec![NetChange::Full]
        );
        assert!(v.link(1000).is_none());
        for i in 0..MAX_ADDRS as u32 {
            apply_all(
                &mut v,
                &addr_msg(RTM_NEWADDR, 1, IpAddr::V4(Ipv4Addr::from(i)), 0),
            );
        }
        assert_eq!(
            apply_all(
                &mut v,
                &addr_msg(RTM_NEWADDR, 1, "10.0.0.1".parse().unwrap(), 0)
            ),
            vec![NetChange::Full]
        );
    }

    #[test]
    fn hostile_datagrams_are_refused_where_they_go_wrong() {
        let mut out = Vec::new();
        let e = parse(&[1, 2, 3], &mut out).unwrap_err();
        assert!(e.to_string().contains("less than a netlink header"), "{e}");
        let mut zero = msg(RTM_NEWLINK, &[0; 16]);
        zero[0..4].copy_from_slice(&0u32.to_ne_bytes());
        let e = parse(&zero, &mut out).unwrap_err();
        assert!(e.to_string().contains("nlmsg_len 0"), "{e}");
        let mut long = msg(RTM_NEWLINK, &[0; 16]);
        long[0..4].copy_from_slice(&400u32.to_ne_bytes());
        let e = parse(&long, &mut out).unwrap_err();
        assert!(e.to_string().contains("runs past the datagram"), "{e}");
        // An attribute claiming more than the message holds.
        let mut body = vec![0u8; 16];
        body.extend_from_slice(&300u16.to_ne_bytes());
        body.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        let e = parse(&msg(RTM_NEWLINK, &body), &mut out).unwrap_err();
        assert_eq!(e.offset, 32);
        assert!(e.to_string().contains("rta_len 300"), "{e}");
        let e = parse(&msg(RTM_NEWADDR, &[2, 24]), &mut out).unwrap_err();
        assert!(e.to_string().contains("ifaddrmsg"), "{e}");
        // A 20-byte hardware address (InfiniBand) is no MAC; odd attribute sizes are ignored.
        out.clear();
        let ib = link_msg(
            RTM_NEWLINK,
            7,
            0,
            &[attr(IFLA_ADDRESS, &[0xaa; 20]), attr(IFLA_LINK, &[1, 2])],
        );
        parse(&ib, &mut out).unwrap();
        match &out[0] {
            RtMsg::Link(l) => assert_eq!((l.mac, l.parent), (None, None)),
            m => panic!("{m:?}"),
        }
        // An address attribute of the wrong length for its family names no address.
        out.clear();
        let mut b = vec![2u8, 24, 0, 0, 1, 0, 0, 0];
        b.extend_from_slice(&attr(IFA_LOCAL, &[1, 2, 3]));
        parse(&msg(RTM_NEWADDR, &b), &mut out).unwrap();
        assert!(out.is_empty());
        // Errors and unknown types.
        out.clear();
        let mut d = msg(NLMSG_ERROR, &(-105i32).to_ne_bytes());
        d.extend(msg(99, &[0; 4]));
        parse(&d, &mut out).unwrap();
        assert_eq!(out, vec![RtMsg::Error(105)]);
        // A bare header of a link or address message: the error is at the message, inside
        // the datagram (the fuzz target's check; the body's offset was one past the end).
        for kind in [RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR] {
            out.clear();
            let mut d = msg(NLMSG_DONE, &[]);
            d.extend(msg(kind, &[]));
            let e = parse(&d, &mut out).unwrap_err();
            assert_eq!((e.offset, out.len()), (16, 1), "type {kind}: {e}");
        }
        // A bad attribute nested in IFLA_LINKINFO is named where it is: header 16, ifinfomsg
        // 16, the LINKINFO attribute's own header 4.
        out.clear();
        let e = parse(
            &link_msg(RTM_NEWLINK, 6, 0, &[attr(IFLA_LINKINFO, &[2, 0, 1, 0])]),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.offset, 36, "{e}");
        // A bridge's AF_BRIDGE notice of a port leaving it is not the link going away.
        out.clear();
        let mut bridge_port = link_msg(RTM_DELLINK, 6, 0, &[]);
        bridge_port[16] = 7;
        parse(&bridge_port, &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        // Found by the rtnetlink fuzz target: i32::MIN overflowed the negation.
        out.clear();
        parse(&msg(NLMSG_ERROR, &i32::MIN.to_ne_bytes()), &mut out).unwrap();
        assert_eq!(out, vec![RtMsg::Error(i32::MAX)]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut out = Vec::new();
        let mut v = NetView::default();
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut d = eth(2, "eth0", true);
            d.extend(vlan(3, 2, 5));
            d.extend(addr_msg(RTM_NEWADDR, 2, "10.0.0.1".parse().unwrap(), 0));
            let n = (seed % 6) as usize + 1;
            for k in 0..n {
                let at = ((seed >> (8 * k)) as usize) % d.len();
                d[at] = (seed >> (3 * k)) as u8;
            }
            d.truncate(((seed >> 40) as usize) % (d.len() + 1));
            out.clear();
            let _ = parse(&d, &mut out);
            for m in &out {
                v.apply(m);
            }
        }
    }

    /// The real kernel: the dumps find the loopback interface and its address.
    #[test]
    fn the_real_kernel_dumps_lo() {
        let s = RouteSocket::open().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut v = NetView::default();
        for dump in [RTM_GETLINK, RTM_GETADDR] {
            s.request(dump, "test dump").unwrap();
            let mut done = false;
            for _ in 0..1000 {
                match s.recv(&mut buf) {
                    RecvResult::Message(m) => {
                        let mut out = Vec::new();
                        parse(m, &mut out).unwrap();
                        for msg in &out {
                            done |= *msg == RtMsg::Done;
                            v.apply(msg);
                        }
                    }
                    RecvResult::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    r => panic!("{r:?}"),
                }
                if done {
                    break;
                }
            }
            assert!(done, "dump {dump} ended");
        }
        let lo = v.link_by_name("lo").expect("lo");
        assert_eq!(lo.ifindex, 1);
        assert_eq!(v.addr_ready("127.0.0.1".parse().unwrap()), Some(1));
    }
}
