//! What the firmware's boot table (NBFT) asks the host to connect, as paths that wait on the network.
//!
//! Each SSNS is one path per HFI it lists (primary first), reached from that HFI's address; each
//! discovery descriptor is one discovery path from its HFI. A path names its HFI by MAC and VLAN,
//! never by interface name: the shell finds the interface through rtnetlink and gives the path to
//! the engine only once that interface holds the HFI's address, so nothing is tried (and failed,
//! and retried on a timer) before the network is there.
//!
//! Choices, where the table or nvme-cli leave room (the man page says the same):
//! - The host ID is stored in EFI GUID byte order; it is given to the kernel in UUID form after
//!   undoing that (the first three groups are little-endian), which is the host NQN's UUID in the
//!   firmware tables we have. `nvme nbft show` prints the stored bytes as they are; so do we.
//! - An HFI configured by DHCP keeps the address the firmware leased in the table, which the OS
//!   may not get again: such a path sets no host_traddr and is ready when its interface has any
//!   usable address of the same family.
//! - An SSNS naming the well-known discovery NQN is a discovery path, not skipped.
//! - A path whose SSNS or descriptor needs a security profile (DH-HMAC-CHAP, TLS) is skipped with
//!   a warning: nvme-monitor does not support them yet, and a connection without them is not the
//!   one the firmware made.
//!
//! # References
//! - NVM Express Boot Specification 1.0 (SSNS HFI lists, discovery descriptor URI form)
//! - nvme-cli fabrics.c `connect-all --nbft` (one connect per SSNS per HFI, host_traddr from the HFI)

use std::net::IpAddr;

use crate::addr::{Nqn, Transport, TransportAddr};
use crate::config::DiscoverySource;
use crate::nbft::{Hfi, Nbft, WELL_KNOWN_DISCOVERY_NQN};
use crate::opts::ConnectOpts;

/// The port a discovery URI without one means (NVMe/TCP's discovery service).
const DISCOVERY_PORT: &str = "8009";

/// The HFI a path goes through, as rtnetlink will find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathHfi {
    pub index: u8,
    pub mac: [u8; 6],
    /// 0: no VLAN.
    pub vlan: u16,
    /// The address the path must be connected from; `None` for a DHCP-configured HFI (any
    /// address of `family_v6`'s family on the interface will do).
    pub ip: Option<IpAddr>,
    pub family_v6: bool,
}

/// One path from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbftPath {
    /// For the log: `NBFT SSNS 1 via HFI 2` and the like, with the table's file name.
    pub label: String,
    pub hfi: PathHfi,
    /// The address without host_iface (filled in once the interface is known), the subsystem
    /// (empty: a discovery controller), and the options the table sets.
    pub source: DiscoverySource,
    /// The firmware marked the SSNS unavailable: failing to connect it is no error.
    pub unavailable: bool,
}

/// What the tables yield: the paths and what was left out, and why (for warnings).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Paths {
    pub paths: Vec<NbftPath>,
    pub skipped: Vec<String>,
    /// The host identity of the first table that has one.
    pub hostnqn: Option<String>,
    pub hostid: Option<String>,
}

/// The host ID as the kernel takes it, from the table's EFI GUID byte order.
pub fn host_id_uuid(stored: &[u8; 16]) -> String {
    let mut b = *stored;
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    crate::nbft_show::uuid_text(&b)
}

/// `nvme+tcp://ADDR[:PORT][/...]`, `ADDR` an IPv4 address or a bracketed IPv6 one; the port
/// defaults to the discovery service's. Errors say what is wrong with the URI.
pub fn parse_discovery_uri(uri: &str) -> Result<(Transport, IpAddr, String), String> {
    let rest = uri
        .strip_prefix("nvme+tcp://")
        .ok_or_else(|| format!("discovery URI '{uri}' is not nvme+tcp://ADDR[:PORT]/"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("discovery URI '{uri}': '[' without ']'"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("discovery URI '{uri}': junk after ']'"))?,
            ),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("discovery URI '{uri}': '{host}' is not an IP address"))?;
    let port = match port {
        None | Some("") => DISCOVERY_PORT.to_string(),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n.to_string(),
            _ => return Err(format!("discovery URI '{uri}': port '{p}' is not 1-65535")),
        },
    };
    Ok((Transport::Tcp, ip, port))
}

/// The paths of one parsed table (`file` names it in labels and reasons). `hostnqn_given` and
/// `hostid_given`: -q/-I were on our command line, which win over the table's identity.
pub fn paths_of(file: &str, t: &Nbft, hostnqn_given: bool, hostid_given: bool, out: &mut Paths) {
    let host = t.host.as_ref();
    let nqn = host
        .and_then(|h| h.nqn.as_deref())
        .filter(|n| !n.is_empty() && !hostnqn_given);
    let id = host
        .filter(|h| h.host_id_configured && !hostid_given && h.id != [0; 16])
        .map(|h| host_id_uuid(&h.id));
    let host_nqn = match nqn.map(Nqn::new) {
        Some(Some(n)) => n,
        Some(None) => {
            out.skipped.push(format!(
                "{file}: host NQN is longer than an NQN may be: the table's paths are skipped"
            ));
            return;
        }
        None => Nqn::EMPTY,
    };
    if out.hostnqn.is_none() {
        out.hostnqn = nqn.map(str::to_string);
        out.hostid = id.clone();
    }
    // The host NQN goes in the options too: a host ID is only sent with the host NQN it was
    // configured with (see fabrics::build_options).
    let opts = ConnectOpts {
        hostnqn: nqn.map(str::to_string),
        hostid: id,
        ..Default::default()
    };
    for s in &t.ssns {
        let what = format!("{file}: SSNS {}", s.index);
        if s.security.is_some() {
            out.skipped.push(format!(
                "{what} ({}) needs a security profile (DH-HMAC-CHAP or TLS), which nvme-monitor does not support yet: skipped",
                s.subsys_nqn
            ));
            continue;
        }
        let subsystem = if s.subsys_nqn == WELL_KNOWN_DISCOVERY_NQN {
            Nqn::EMPTY
        } else {
            match Nqn::new(&s.subsys_nqn).filter(|n| !n.is_empty()) {
                Some(n) => n,
                None => {
                    out.skipped.push(format!(
                        "{what}: subsystem NQN '{}' is not an NQN: skipped",
                        s.subsys_nqn
                    ));
                    continue;
                }
            }
        };
        let opts = ConnectOpts {
            hdr_digest: s.pdu_header_digest,
            data_digest: s.data_digest,
            ..opts.clone()
        };
        for &h in &s.hfis {
            let label = format!("NBFT {what} via HFI {h}");
            match path(
                &label,
                t.hfi(h),
                s.traddr,
                &s.trsvcid,
                host_nqn,
                subsystem,
                &opts,
            ) {
                Ok(mut p) => {
                    p.unavailable = s.unavailable();
                    out.paths.push(p);
                }
                Err(why) => out.skipped.push(why),
            }
        }
    }
    for d in &t.discovery {
        let what = format!("{file}: discovery descriptor {}", d.index);
        if d.security.is_some() {
            out.skipped.push(format!(
                "{what} ({}) needs a security profile (DH-HMAC-CHAP or TLS), which nvme-monitor does not support yet: skipped",
                d.uri
            ));
            continue;
        }
        let Some(h) = d.hfi else {
            out.skipped.push(format!("{what} names no HFI: skipped"));
            continue;
        };
        let (_, ip, port) = match parse_discovery_uri(&d.uri) {
            Ok(u) => u,
            Err(why) => {
                out.skipped.push(format!("{what}: {why}: skipped"));
                continue;
            }
        };
        let label = format!("NBFT {what} via HFI {h}");
        match path(&label, t.hfi(h), ip, &port, host_nqn, Nqn::EMPTY, &opts) {
            Ok(p) => out.paths.push(p),
            Err(why) => out.skipped.push(why),
        }
    }
}

fn path(
    label: &str,
    hfi: Option<&Hfi>,
    traddr: IpAddr,
    trsvcid: &str,
    hostnqn: Nqn,
    subsystem: Nqn,
    opts: &ConnectOpts,
) -> Result<NbftPath, String> {
    let hfi = hfi.ok_or_else(|| format!("{label}: the table has no such HFI: skipped"))?;
    let traddr = canonical(traddr);
    let own = canonical(hfi.tcp.ip);
    let dhcp = hfi.tcp.dhcp_override || hfi.tcp.ip_origin == IP_ORIGIN_DHCP;
    let ip = (!dhcp && !own.is_unspecified()).then_some(own);
    if !dhcp && ip.is_none() {
        return Err(format!(
            "{label}: the HFI has neither an address nor DHCP: skipped"
        ));
    }
    let host_traddr = ip.map(|i| i.to_string()).unwrap_or_default();
    let mut addr = TransportAddr::new(
        Transport::Tcp,
        &traddr.to_string(),
        trsvcid,
        &host_traddr,
        "",
    )
    .map_err(|field| format!("{label}: {field} does not fit: skipped"))?;
    addr.hostnqn = hostnqn;
    Ok(NbftPath {
        label: label.to_string(),
        hfi: PathHfi {
            index: hfi.index,
            mac: hfi.tcp.mac,
            vlan: hfi.tcp.vlan,
            ip,
            family_v6: traddr.is_ipv6(),
        },
        source: DiscoverySource {
            addr,
            opts: opts.clone(),
            persistent: false,
            subsystem,
            explicit: false,
        },
        unavailable: false,
    })
}

/// Where a path stands with the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// No interface has the HFI's MAC (and VLAN) yet.
    NoInterface,
    /// The interface is there, without the HFI's address (or, for DHCP, any usable one).
    NoAddress {
        ifname: String,
    },
    Ready {
        ifname: String,
    },
}

/// Is the HFI's interface there with its address? Decided on the view alone, so a test can ask.
pub fn readiness(hfi: &PathHfi, net: &crate::rtnetlink::NetView) -> Readiness {
    let Some(link) = net.iface_by_mac(hfi.mac, hfi.vlan) else {
        return Readiness::NoInterface;
    };
    let ready = match hfi.ip {
        Some(ip) => net.addr_ready_on(link.ifindex, ip),
        None => net.any_ready_on(link.ifindex, hfi.family_v6),
    };
    let ifname = link.name.clone();
    if ready {
        Readiness::Ready { ifname }
    } else {
        Readiness::NoAddress { ifname }
    }
}

/// The IP origin value the NVMe Boot Specification gives DHCP (IPv4 and IPv6 alike here).
const IP_ORIGIN_DHCP: u8 = 3;

/// IPv4-mapped IPv6 as the IPv4 address it is (how the table stores IPv4).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Nbft {
        let bytes = std::fs::read(format!(
            "{}/tests/data/nbft/tables/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        crate::nbft::parse(&bytes).unwrap()
    }

    #[test]
    fn host_id_undoes_the_guid_byte_order() {
        let stored = [
            0xe3, 0x59, 0xb7, 0xa1, 0x5d, 0x03, 0x77, 0x47, 0xb3, 0xcc, 0x17, 0x54, 0xb8, 0xb8,
            0x19, 0xb9,
        ];
        assert_eq!(
            host_id_uuid(&stored),
            "a1b759e3-035d-4777-b3cc-1754b8b819b9"
        );
    }

    #[test]
    fn discovery_uris() {
        let ok = |u: &str| parse_discovery_uri(u).map(|(_, ip, p)| (ip.to_string(), p));
        assert_eq!(
            ok("nvme+tcp://10.99.0.1:4420/"),
            Ok(("10.99.0.1".into(), "4420".into()))
        );
        assert_eq!(
            ok("nvme+tcp://10.99.0.1/"),
            Ok(("10.99.0.1".into(), "8009".into()))
        );
        assert_eq!(
            ok("nvme+tcp://[fd00::1]:8010"),
            Ok(("fd00::1".into(), "8010".into()))
        );
        assert_eq!(
            ok("nvme+tcp://[fd00::1]/"),
            Ok(("fd00::1".into(), "8009".into()))
        );
        for bad in [
            "nvme+rdma://10.0.0.1/",
            "nvme+tcp://host.example:8009/",
            "nvme+tcp://10.0.0.1:0/",
            "nvme+tcp://10.0.0.1:99999/",
            "nvme+tcp://[fd00::1/",
            "nvme+tcp://[fd00::1]x/",
            "",
        ] {
            let e = parse_discovery_uri(bad).unwrap_err();
            assert!(e.contains("discovery URI"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_ssns_once_per_hfi_from_the_hfis_address_with_the_tables_identity() {
        let mut seen = 0;
        let mut paths = 0;
        for name in std::fs::read_dir(format!(
            "{}/tests/data/nbft/tables",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        {
            seen += 1;
            let t = table(&name);
            let mut out = Paths::default();
            paths_of(&name, &t, false, false, &mut out);
            paths += out.paths.len();
            let want: usize =
                t.ssns.iter().map(|s| s.hfis.len()).sum::<usize>() + t.discovery.len();
            assert_eq!(
                out.paths.len() + out.skipped.len(),
                want,
                "{name}: every SSNS x HFI and descriptor is a path or a reason"
            );
            for p in &out.paths {
                assert!(
                    p.source.addr.host_iface.is_empty(),
                    "{name}: found later, by MAC"
                );
                if let Some(ip) = p.hfi.ip {
                    assert_eq!(p.source.addr.host_traddr.as_str(), ip.to_string());
                }
            }
        }
        assert_eq!(seen, 6, "the six shared tables");
        assert!(paths >= 6, "they hold paths: {paths}");
    }

    #[test]
    fn static_ipv4_table_gives_its_subsystem_with_the_hfis_address_and_mac() {
        let t = table("NBFT-static-ipv4");
        let mut out = Paths::default();
        paths_of("NBFT", &t, false, false, &mut out);
        let p = &out.paths[0];
        let ssns = &t.ssns[0];
        let hfi = t.hfi(ssns.hfis[0]).unwrap();
        assert_eq!(p.source.subsystem.as_str(), ssns.subsys_nqn);
        assert_eq!(
            p.source.addr.traddr.as_str(),
            canonical(ssns.traddr).to_string()
        );
        assert_eq!(p.source.addr.trsvcid.as_str(), ssns.trsvcid);
        assert_eq!(p.hfi.mac, hfi.tcp.mac);
        assert_eq!(p.hfi.ip, Some(canonical(hfi.tcp.ip)));
        assert_eq!(
            p.source.addr.hostnqn.as_str(),
            t.host.as_ref().unwrap().nqn.as_deref().unwrap()
        );
        assert_eq!(
            out.hostnqn.as_deref(),
            t.host.as_ref().unwrap().nqn.as_deref()
        );
        // In the options too, or the host ID would not be sent with it.
        assert_eq!(p.source.opts.hostnqn, out.hostnqn);
        // -q and -I on our command line win: the paths carry no identity of their own.
        let mut given = Paths::default();
        paths_of("NBFT", &t, true, true, &mut given);
        assert!(given.paths[0].source.addr.hostnqn.is_empty());
        assert_eq!(given.paths[0].source.opts.hostid, None);
        assert_eq!(given.paths[0].source.opts.hostnqn, None);
        assert_eq!(given.hostnqn, None);
    }

    #[test]
    fn a_path_is_ready_when_its_interface_by_mac_holds_the_hfis_address() {
        use crate::rtnetlink::{IfAddr, Link, NetView, RtMsg};
        let mac = [0x52, 0x54, 0x00, 0x4e, 0x42, 0x01];
        let hfi = PathHfi {
            index: 1,
            mac,
            vlan: 0,
            ip: Some("10.99.0.1".parse().unwrap()),
            family_v6: false,
        };
        let mut net = NetView::default();
        assert_eq!(readiness(&hfi, &net), Readiness::NoInterface);
        let link = |ifindex, name: &str, mac, vlan, parent| Link {
            ifindex,
            name: name.into(),
            mac: Some(mac),
            vlan,
            parent,
            up: true,
            lower_up: true,
        };
        // Another NIC holds the address: not the HFI's interface, so not ready.
        net.apply(&RtMsg::Link(link(2, "eth0", [2; 6], None, None)));
        let on = |ifindex, ip: &str, tentative| {
            RtMsg::Addr(IfAddr {
                ifindex,
                addr: ip.parse().unwrap(),
                prefix: 24,
                tentative,
                dad_failed: false,
            })
        };
        net.apply(&on(2, "10.99.0.1", false));
        assert_eq!(readiness(&hfi, &net), Readiness::NoInterface);
        // The HFI's NIC under any name; a VLAN on it does not stand in for it.
        net.apply(&RtMsg::Link(link(4, "enp0s9.7", mac, Some(7), Some(3))));
        net.apply(&RtMsg::Link(link(3, "enp0s9", mac, None, None)));
        assert_eq!(
            readiness(&hfi, &net),
            Readiness::NoAddress {
                ifname: "enp0s9".into()
            }
        );
        net.apply(&on(3, "10.99.0.2", false));
        assert!(matches!(readiness(&hfi, &net), Readiness::NoAddress { .. }));
        net.apply(&on(3, "10.99.0.1", false));
        assert_eq!(
            readiness(&hfi, &net),
            Readiness::Ready {
                ifname: "enp0s9".into()
            }
        );
        // With a VLAN the VLAN interface is meant; DHCP: any usable address of the family.
        let vlan = PathHfi {
            vlan: 7,
            ip: None,
            ..hfi
        };
        assert!(
            matches!(readiness(&vlan, &net), Readiness::NoAddress { ifname } if ifname == "enp0s9.7")
        );
        net.apply(&on(4, "fe80::1", false));
        net.apply(&on(4, "192.168.7.9", true));
        assert!(matches!(
            readiness(&vlan, &net),
            Readiness::NoAddress { .. }
        ));
        net.apply(&on(4, "192.168.7.9", false));
        assert!(
            matches!(readiness(&vlan, &net), Readiness::Ready { ifname } if ifname == "enp0s9.7")
        );
    }
}
