//! The real NBFT tables in tests/data/nbft/tables decode to exactly the fields libnvme's test suite
//! decodes from them (tests/data/nbft/expected, in libnvme's nbft-dump format), and the bad ones
//! are refused with an error, not a panic. See tests/data/nbft/README.md for where they come from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nvme_monitor::nbft::{self, Nbft};
use nvme_monitor::nbft_show::ip_text;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nbft");

/// Bytes as the dump prints them: each in hex without a leading zero.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:x}")).collect()
}

fn b(v: bool) -> u8 {
    u8::from(v)
}

/// `t` in libnvme's nbft-dump format (test/nbft/nbft-dump.c), line for line.
fn dump(size: usize, t: &Nbft) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "raw_nbft_size={size}");
    if let Some(h) = &t.host {
        let _ = writeln!(o, "host.id={}", hex(&h.id));
        let _ = writeln!(o, "host.nqn={}", h.nqn.as_deref().unwrap_or("(null)"));
        let _ = writeln!(o, "host.host_id_configured={}", b(h.host_id_configured));
        let _ = writeln!(o, "host.host_nqn_configured={}", b(h.host_nqn_configured));
        let _ = writeln!(o, "host.primary={}", h.primary_admin.value());
    }
    for (i, h) in t.hfis.iter().enumerate() {
        let p = format!("hfi_list[{i}]->");
        let c = &h.tcp;
        let _ = writeln!(o, "{p}index={}", h.index);
        let _ = writeln!(o, "{p}transport=tcp");
        let _ = writeln!(o, "{p}tcp_info.pci_sbdf={}", c.pci_sbdf);
        let _ = writeln!(o, "{p}tcp_info.mac_addr={}", hex(&c.mac));
        let _ = writeln!(o, "{p}tcp_info.vlan={}", c.vlan);
        let _ = writeln!(o, "{p}tcp_info.ip_origin={}", c.ip_origin);
        let _ = writeln!(o, "{p}tcp_info.ipaddr={}", ip_text(&c.ip));
        let _ = writeln!(o, "{p}tcp_info.subnet_mask_prefix={}", c.prefix);
        let _ = writeln!(o, "{p}tcp_info.gateway_ipaddr={}", ip_text(&c.gateway));
        let _ = writeln!(o, "{p}tcp_info.route_metric={}", c.route_metric);
        let _ = writeln!(
            o,
            "{p}tcp_info.primary_dns_ipaddr={}",
            ip_text(&c.primary_dns)
        );
        let _ = writeln!(
            o,
            "{p}tcp_info.secondary_dns_ipaddr={}",
            ip_text(&c.secondary_dns)
        );
        let dhcp = c.dhcp_server.as_ref().map(ip_text).unwrap_or_default();
        let _ = writeln!(o, "{p}tcp_info.dhcp_server_ipaddr={dhcp}");
        let name = c.host_name.as_deref().unwrap_or("(null)");
        let _ = writeln!(o, "{p}tcp_info.host_name={name}");
        let _ = writeln!(
            o,
            "{p}tcp_info.this_hfi_is_default_route={}",
            b(c.global_route)
        );
        let _ = writeln!(o, "{p}tcp_info.dhcp_override={}", b(c.dhcp_override));
    }
    for (i, d) in t.discovery.iter().enumerate() {
        let p = format!("discovery_list[{i}]->");
        let _ = writeln!(o, "{p}index={}", d.index);
        if let Some(s) = d.security {
            let _ = writeln!(o, "{p}security->index={s}");
        }
        if let Some(h) = d.hfi {
            let _ = writeln!(o, "{p}hfi->index={h}");
        }
        let _ = writeln!(o, "{p}uri={}", d.uri);
        let _ = writeln!(o, "{p}nqn={}", d.nqn);
    }
    for (i, s) in t.ssns.iter().enumerate() {
        let p = format!("subsystem_ns_list[{i}]->");
        let _ = writeln!(o, "{p}index={}", s.index);
        if let Some(d) = s.discovery {
            let _ = writeln!(o, "{p}discovery->index={d}");
        }
        if let Some(x) = s.security {
            let _ = writeln!(o, "{p}security->index={x}");
        }
        let _ = writeln!(o, "{p}num_hfis={}", s.hfis.len());
        for (j, h) in s.hfis.iter().enumerate() {
            let _ = writeln!(o, "{p}hfis[{j}]->index={h}");
        }
        let _ = writeln!(o, "{p}transport=tcp");
        let _ = writeln!(o, "{p}traddr={}", ip_text(&s.traddr));
        let _ = writeln!(o, "{p}trsvcid={}", s.trsvcid);
        let _ = writeln!(o, "{p}subsys_port_id={}", s.subsys_port_id);
        let _ = writeln!(o, "{p}nsid={}", s.nsid);
        let _ = writeln!(o, "{p}nid_type={}", s.nid_type);
        let _ = writeln!(o, "{p}nid={}", hex(&s.nid));
        let _ = writeln!(o, "{p}subsys_nqn={}", s.subsys_nqn);
        let _ = writeln!(
            o,
            "{p}pdu_header_digest_required={}",
            b(s.pdu_header_digest)
        );
        let _ = writeln!(o, "{p}data_digest_required={}", b(s.data_digest));
        let ext = s.extended.as_ref();
        let _ = writeln!(o, "{p}controller_id={}", ext.map_or(0, |e| e.cntlid));
        let asqsz = ext.filter(|e| e.admin_asqsz).map_or(0, |e| e.asqsz);
        let _ = writeln!(o, "{p}asqsz={asqsz}");
        let root = ext
            .and_then(|e| e.dhcp_root_path.as_deref())
            .unwrap_or("(null)");
        let _ = writeln!(o, "{p}dhcp_root_path_string={root}");
        let _ = writeln!(o, "{p}discovered={}", b(s.discovered));
        let _ = writeln!(o, "{p}unavailable={}", b(s.unavailable()));
    }
    o
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(DATA).join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_table_decodes_to_the_expected_fields() {
    let tables = files("tables");
    assert_eq!(tables.len(), 6, "{tables:?}");
    let mut failures = Vec::new();
    for path in &tables {
        let name = path.file_name().unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let t = match nbft::parse(&bytes) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: refused: {e}"));
                continue;
            }
        };
        let got = dump(bytes.len(), &t);
        let want_path = Path::new(DATA).join("expected").join(format!("{name}.txt"));
        let want = std::fs::read_to_string(&want_path).unwrap();
        if got != want {
            let diff: Vec<String> = want
                .lines()
                .zip(got.lines().chain(std::iter::repeat("<missing>")))
                .filter(|(w, g)| w != g)
                .map(|(w, g)| format!("  want {w}\n  got  {g}"))
                .collect();
            failures.push(format!(
                "{name}: {} lines differ ({} wanted, {} got):\n{}",
                diff.len(),
                want.lines().count(),
                got.lines().count(),
                diff.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_expected_file_has_its_table() {
    for path in files("expected") {
        let name = path.file_stem().unwrap();
        assert!(
            Path::new(DATA).join("tables").join(name).exists(),
            "{path:?}"
        );
    }
}

#[test]
fn bad_tables_are_refused_naming_the_field() {
    let bad = files("bad");
    assert_eq!(bad.len(), 2, "{bad:?}");
    for path in bad {
        let bytes = std::fs::read(&path).unwrap();
        let e = nbft::parse(&bytes).expect_err(&format!("{path:?} parsed"));
        let text = e.to_string();
        assert!(!e.field.is_empty() && text.contains(e.field), "{text}");
    }
    let noise = std::fs::read(Path::new(DATA).join("bad/NBFT-random-noise")).unwrap();
    assert_eq!(
        nbft::parse(&noise).unwrap_err().to_string(),
        "header: signature: not NBFT"
    );
    let old = std::fs::read(Path::new(DATA).join("bad/NBFT-bad-oldspec")).unwrap();
    let e = nbft::parse(&old).unwrap_err();
    assert_eq!(
        (e.structure, e.field),
        (nbft::Structure::Header, "heap offset"),
        "{e}"
    );
}

/// Every prefix of every table, good and bad, is refused or parsed without a panic; a prefix is
/// what a short read gives.
#[test]
fn truncated_tables_never_panic() {
    for path in files("tables").into_iter().chain(files("bad")) {
        let bytes = std::fs::read(&path).unwrap();
        for n in 0..bytes.len() {
            let _ = nbft::parse(&bytes[..n]);
        }
    }
}
