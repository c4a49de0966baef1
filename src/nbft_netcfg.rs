//! The initramfs network setup an NBFT asks for, as kernel command line arguments.
//!
//! dracut's nvmf module turns `nvme nbft show -o json` into `ifname=`, `ip=` and `vlan=` lines
//! with jq; `nvme-monitor nbft cmdline` prints the same from our own parser, so an image needs
//! neither nvme-cli nor jq. initramfs-tools' `configure_networking` takes the same `ip=` form.
//!
//! Per HFI, numbered `nbft0`, `nbft1`, ... in table order, one name per MAC:
//! - `ifname=nbftN:<mac>`: the interface is named by its MAC, whatever the driver called it;
//! - `vlan=nbftN.<vid>:nbftN` when the HFI is on a VLAN;
//! - `ip=<if>:dhcp` (`dhcp6` for IPv6) when the firmware got the address by DHCP, else
//!   `ip=<addr>::<gw>:<prefix>:<hostname>:<if>:none[:<dns1>[:<dns2>]]`, IPv6 addresses in
//!   brackets, an unset gateway, host name or DNS server left empty;
//! - `rd.neednet=1` once, when there is any HFI.
//!
//! # References
//! - dracut modules.d/95nvmf/parse-nvmf-boot-connections.sh (the lines it writes per HFI)
//! - dracut.cmdline(7) (`ip=`, `ifname=`, `vlan=` syntax)

use std::net::IpAddr;

use crate::nbft::Nbft;

/// The IP origin the NVMe Boot Specification gives DHCP.
const IP_ORIGIN_DHCP: u8 = 3;

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address for `ip=`: empty when unset, IPv6 in brackets.
fn field(ip: IpAddr) -> String {
    let ip = unmapped(ip);
    if ip.is_unspecified() {
        String::new()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// The arguments for `tables`, one per element, in table and HFI order.
pub fn cmdline_args<'a>(tables: impl IntoIterator<Item = &'a Nbft>) -> Vec<String> {
    let mut out = Vec::new();
    let mut names: Vec<([u8; 6], String)> = Vec::new();
    for t in tables {
        for h in &t.hfis {
            let tcp = &h.tcp;
            let base = match names.iter().find(|(m, _)| *m == tcp.mac) {
                Some((_, n)) => n.clone(),
                None => {
                    let n = format!("nbft{}", names.len());
                    out.push(format!(
                        "ifname={n}:{}",
                        crate::nbft_show::mac_text(&tcp.mac)
                    ));
                    names.push((tcp.mac, n.clone()));
                    n
                }
            };
            let iface = if tcp.vlan != 0 {
                let v = format!("{base}.{}", tcp.vlan);
                let line = format!("vlan={v}:{base}");
                if !out.contains(&line) {
                    out.push(line);
                }
                v
            } else {
                base
            };
            let ip = unmapped(tcp.ip);
            if tcp.ip_origin == IP_ORIGIN_DHCP || tcp.dhcp_override {
                // The family of the DHCP server the firmware used, where it says: the HFI's own
                // address may be left unset (zero, IPv4-mapped) when DHCP gave it.
                let family = tcp.dhcp_server.map(unmapped).unwrap_or(ip);
                let kind = if family.is_ipv6() { "dhcp6" } else { "dhcp" };
                out.push(format!("ip={iface}:{kind}"));
                continue;
            }
            let mut line = format!(
                "ip={}::{}:{}:{}:{iface}:none",
                field(ip),
                field(tcp.gateway),
                tcp.prefix,
                tcp.host_name.as_deref().unwrap_or_default()
            );
            let (d1, d2) = (field(tcp.primary_dns), field(tcp.secondary_dns));
            if !d1.is_empty() {
                line.push(':');
                line.push_str(&d1);
                if !d2.is_empty() {
                    line.push(':');
                    line.push_str(&d2);
                }
            }
            out.push(line);
        }
    }
    if !names.is_empty() {
        out.push("rd.neednet=1".into());
    }
    out
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
    fn static_and_dhcp_tables_give_dracuts_lines() {
        let t = table("NBFT-static-ipv4");
        let a = cmdline_args([&t]);
        let h = &t.hfis[0].tcp;
        assert_eq!(
            a[0],
            format!("ifname=nbft0:{}", crate::nbft_show::mac_text(&h.mac))
        );
        assert!(a[1].starts_with("ip=192.168.49.50::"), "{a:?}");
        assert!(a[1].contains(&format!(":{}:", h.prefix)), "{a:?}");
        assert!(a[1].contains(":nbft0:none"), "{a:?}");
        assert_eq!(a.last().map(String::as_str), Some("rd.neednet=1"));
        let d = table("NBFT-dhcp-ipv4");
        let a = cmdline_args([&d]);
        assert!(a.contains(&"ip=nbft0:dhcp".to_string()), "{a:?}");
        // DHCPv6 with the HFI's address not filled in: the server's family decides.
        let mut d6 = d.clone();
        d6.hfis[0].tcp.ip = "::ffff:0.0.0.0".parse().unwrap();
        d6.hfis[0].tcp.dhcp_override = true;
        d6.hfis[0].tcp.dhcp_server = Some("fd00::1".parse().unwrap());
        let a = cmdline_args([&d6]);
        assert!(a.contains(&"ip=nbft0:dhcp6".to_string()), "{a:?}");
        let v6 = table("NBFT-static-ipv6");
        let a = cmdline_args([&v6]);
        assert!(a.iter().any(|l| l.starts_with("ip=[")), "{a:?}");
        assert!(cmdline_args([&table("NBFT-empty")]).is_empty());
    }

    #[test]
    fn vlans_and_shared_macs_name_each_nic_once() {
        let mut t = table("NBFT-static-ipv4");
        let mut second = t.hfis[0].clone();
        second.index = 2;
        second.tcp.vlan = 5;
        second.tcp.ip = "10.5.0.2".parse().unwrap();
        second.tcp.primary_dns = "10.5.0.53".parse().unwrap();
        t.hfis.push(second);
        let a = cmdline_args([&t]);
        assert_eq!(
            a.iter().filter(|l| l.starts_with("ifname=")).count(),
            1,
            "{a:?}"
        );
        assert!(a.contains(&"vlan=nbft0.5:nbft0".to_string()), "{a:?}");
        assert!(
            a.iter()
                .any(|l| l.starts_with("ip=10.5.0.2::") && l.ends_with(":nbft0.5:none:10.5.0.53")),
            "{a:?}"
        );
    }
}
