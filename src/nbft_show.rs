//! `nvme-monitor nbft show`: the firmware's NBFT tables, as `nvme nbft show` prints them.
//!
//! Every file named `NBFT*` in the tables directory (ACPI sysfs names a repeated signature NBFT1,
//! NBFT2...) is read, in name order, and parsed by [`crate::nbft::parse`]. `-o json` prints what
//! nvme-cli's nbft plugin prints, key for key and in the same value forms, so that scripts written
//! for it (dracut's nvmf module runs it through jq) work unchanged: an array with one object per
//! table, `filename` (the path), `host`, `subsystem`, `hfi`, `discovery`. Booleans are 0 or 1,
//! addresses text as inet_ntop writes them, the host ID the 16 stored bytes in UUID form (in
//! stored order, as nvme-cli prints them), `pcidev` `segment:bus:device.function` in hex.
//!
//! A table that cannot be parsed is left out of the output and named on stderr with the field that
//! is wrong; the exit status is then 1, else 0 (also when there is no table at all).
//!
//! # References
//! - nvme-cli plugins/nbft (the JSON keys), Documentation/nvme-nbft-show.txt
//! - drivers/acpi/sysfs.c (table file names), inet_ntop(3)

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cli::{NbftArgs, OutputFormat};
use crate::json::Value;
use crate::nbft::{self, Hfi, Nbft, PrimaryAdmin, Ssns};

/// Where Linux shows ACPI tables.
pub const DEFAULT_TABLES_DIR: &str = "/sys/firmware/acpi/tables";

/// An ACPI table's length is a u32, but NBFTs are a few kilobytes: reading stops here, so a wrong
/// `--nbft-path` with a huge `NBFT*` file in it cannot eat the memory of an initramfs.
const MAX_TABLE_BYTES: u64 = 1 << 20;

/// One `NBFT*` file: its path as shown, and what came of reading it.
pub struct TableFile {
    pub filename: String,
    pub result: Result<Nbft, String>,
}

/// Read and parse every `NBFT*` file in `dir`, in name order. A directory that does not exist has
/// no tables (a machine without ACPI, or firmware that booted nothing over the network).
pub fn load(dir: &Path) -> Result<Vec<TableFile>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("unable to read {}: {e}", dir.display())),
    };
    let mut names: Vec<std::ffi::OsString> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("unable to read {}: {e}", dir.display()))?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b"NBFT") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.iter().map(|n| load_one(&dir.join(n))).collect())
}

fn load_one(path: &Path) -> TableFile {
    let filename = path.display().to_string();
    let result = read_table(path).and_then(|bytes| {
        nbft::parse(&bytes).map_err(|e| format!("{filename}: table refused: {e}"))
    });
    TableFile { filename, result }
}

fn read_table(path: &Path) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("unable to read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_TABLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("unable to read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_TABLE_BYTES {
        return Err(format!(
            "{}: table refused: more than {MAX_TABLE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// `nvme-monitor nbft show`.
pub fn run(args: &NbftArgs) -> i32 {
    run_to(args, &mut std::io::stdout().lock())
}

fn run_to(args: &NbftArgs, out: &mut impl Write) -> i32 {
    let files = match load(&args.nbft_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nvme-monitor: error: {e}");
            return crate::cli::EXIT_FATAL;
        }
    };
    let mut good = Vec::new();
    let mut code = crate::cli::EXIT_OK;
    for f in files {
        match f.result {
            Ok(t) => good.push((f.filename, t)),
            Err(e) => {
                eprintln!("nvme-monitor: error: {e}");
                code = crate::cli::EXIT_FATAL;
            }
        }
    }
    let text = match args.output {
        _ if args.cmdline => {
            let mut t = String::new();
            for line in crate::nbft_netcfg::cmdline_args(good.iter().map(|(_, t)| t)) {
                t.push_str(&line);
                t.push('\n');
            }
            t
        }
        OutputFormat::Json => format_json(&good),
        OutputFormat::Normal if good.is_empty() && code == crate::cli::EXIT_OK => {
            format!("no NBFT in {}\n", args.nbft_path.display())
        }
        OutputFormat::Normal => format_normal(&good),
    };
    // Not print!: a closed pipe (`nbft show | head -1`) must not turn into a panic.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(_) => crate::cli::EXIT_FATAL,
    }
}

/// An address as glibc's inet_ntop writes it (libnvme formats them so): Rust's `Display` differs
/// only for IPv4-compatible IPv6 addresses (`::a.b.c.d`), which glibc writes with the dotted quad.
pub fn ip_text(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            // glibc: the longest zero run is words 0-5 exactly, and word 6 is not zero.
            if o[..12].iter().all(|&b| b == 0) && (o[12] != 0 || o[13] != 0) {
                format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15])
            } else {
                v6.to_string()
            }
        }
    }
}

/// 16 bytes as a UUID, in the order given.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

pub fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// `segment:bus:device.function`, each in hex without padding, as nvme-cli prints it.
pub fn pcidev_text(sbdf: u32) -> String {
    format!(
        "{:x}:{:x}:{:x}.{:x}",
        sbdf >> 16,
        (sbdf >> 8) & 0xff,
        (sbdf >> 3) & 0x1f,
        sbdf & 7
    )
}

fn primary_admin_text(p: PrimaryAdmin) -> &'static str {
    match p {
        PrimaryAdmin::NotIndicated => "not indicated",
        PrimaryAdmin::Unselected => "unselected",
        PrimaryAdmin::Selected => "selected",
        PrimaryAdmin::Reserved => "reserved",
    }
}

fn flag(b: bool) -> Value {
    Value::from(u32::from(b))
}

fn int(n: impl Into<u64>) -> Value {
    Value::UInt(n.into())
}

/// The NID type's name and the NID as nvme-cli shows them; an unknown type has no name and "".
fn nid_text(s: &Ssns) -> (Option<&'static str>, String) {
    let hex = |n: usize| s.nid.iter().take(n).map(|b| format!("{b:02x}")).collect();
    match s.nid_type {
        1 => (Some("eui64"), hex(8)),
        2 => (Some("nguid"), hex(16)),
        3 => (Some("uuid"), uuid_text(&s.nid)),
        _ => (None, String::new()),
    }
}

fn ssns_json(s: &Ssns) -> Value {
    let mut m: Vec<(&str, Value)> = vec![
        ("index", int(s.index)),
        ("num_hfis", int(s.hfis.len() as u64)),
        ("hfis", Value::array(s.hfis.iter().map(|&i| int(i)))),
        ("transport", "tcp".into()),
        ("traddr", ip_text(&s.traddr).into()),
        ("trsvcid", s.trsvcid.as_str().into()),
        ("subsys_port_id", int(s.subsys_port_id)),
        ("nsid", int(s.nsid)),
    ];
    let (nid_type, nid) = nid_text(s);
    if let Some(t) = nid_type {
        m.push(("nid_type", t.into()));
    }
    m.push(("nid", nid.into()));
    m.push(("subsys_nqn", s.subsys_nqn.as_str().into()));
    let ext = s.extended.as_ref();
    m.push(("controller_id", int(ext.map_or(0, |e| e.cntlid))));
    // libnvme reports ASQSZ only when it was set by the administrator.
    let asqsz = ext.filter(|e| e.admin_asqsz).map_or(0, |e| e.asqsz);
    m.push(("asqsz", int(asqsz)));
    if let Some(p) = ext.and_then(|e| e.dhcp_root_path.as_deref()) {
        m.push(("dhcp_root_path_string", p.into()));
    }
    m.push(("pdu_header_digest_required", flag(s.pdu_header_digest)));
    m.push(("data_digest_required", flag(s.data_digest)));
    m.push(("discovered", flag(s.discovered)));
    m.push(("unavailable", flag(s.unavailable())));
    Value::object(m)
}

fn hfi_json(h: &Hfi) -> Value {
    let t = &h.tcp;
    let mut m: Vec<(&str, Value)> = vec![
        ("index", int(h.index)),
        ("transport", "tcp".into()),
        ("pcidev", pcidev_text(t.pci_sbdf).into()),
        ("mac_addr", mac_text(&t.mac).into()),
        ("vlan", int(t.vlan)),
        ("ip_origin", int(t.ip_origin)),
        ("ipaddr", ip_text(&t.ip).into()),
        ("subnet_mask_prefix", int(t.prefix)),
        ("gateway_ipaddr", ip_text(&t.gateway).into()),
        ("route_metric", int(t.route_metric)),
        ("primary_dns_ipaddr", ip_text(&t.primary_dns).into()),
        ("secondary_dns_ipaddr", ip_text(&t.secondary_dns).into()),
        (
            "dhcp_server_ipaddr",
            t.dhcp_server
                .as_ref()
                .map_or_else(String::new, ip_text)
                .into(),
        ),
    ];
    if let Some(name) = &t.host_name {
        m.push(("host_name", name.as_str().into()));
    }
    m.push(("this_hfi_is_default_route", flag(t.global_route)));
    m.push(("dhcp_override", flag(t.dhcp_override)));
    Value::object(m)
}

fn discovery_json(d: &nbft::DiscoveryDescriptor) -> Value {
    let mut m: Vec<(&str, Value)> = vec![("index", int(d.index))];
    if let Some(s) = d.security {
        m.push(("security", int(s)));
    }
    if let Some(h) = d.hfi {
        m.push(("hfi", int(h)));
    }
    m.push(("uri", d.uri.as_str().into()));
    m.push(("nqn", d.nqn.as_str().into()));
    Value::object(m)
}

/// One table's object in `nbft show -o json`.
pub fn table_json(filename: &str, t: &Nbft) -> Value {
    let mut host: Vec<(&str, Value)> = Vec::new();
    let (id_conf, nqn_conf, primary) = match &t.host {
        Some(h) => {
            if let Some(nqn) = &h.nqn {
                host.push(("nqn", nqn.as_str().into()));
            }
            host.push(("id", uuid_text(&h.id).into()));
            (h.host_id_configured, h.host_nqn_configured, h.primary_admin)
        }
        None => (false, false, PrimaryAdmin::NotIndicated),
    };
    host.push(("host_id_configured", flag(id_conf)));
    host.push(("host_nqn_configured", flag(nqn_conf)));
    host.push((
        "primary_admin_host_flag",
        primary_admin_text(primary).into(),
    ));
    Value::object([
        ("filename", Value::from(filename)),
        ("host", Value::object(host)),
        ("subsystem", Value::array(t.ssns.iter().map(ssns_json))),
        ("hfi", Value::array(t.hfis.iter().map(hfi_json))),
        (
            "discovery",
            Value::array(t.discovery.iter().map(discovery_json)),
        ),
    ])
}

/// `nbft show -o json`: the array, pretty-printed, with a final newline.
pub fn format_json(tables: &[(String, Nbft)]) -> String {
    let v = Value::array(tables.iter().map(|(f, t)| table_json(f, t)));
    let mut s = v.to_pretty();
    s.push('\n');
    s
}

/// Rows of cells as columns separated by '|', the header underlined with '-' and '+'.
fn grid(out: &mut String, title: &str, head: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut parts = Vec::new();
        for (c, w) in cells.zip(&width) {
            parts.push(format!("{c:<w$}"));
        }
        out.push_str(parts.join("|").trim_end());
        out.push('\n');
    };
    let _ = write!(out, "\n{title}:\n\n");
    line(out, &mut head.iter().copied());
    let dashes: Vec<String> = width.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&dashes.join("+"));
    out.push('\n');
    for r in rows {
        line(out, &mut r.iter().map(String::as_str));
    }
}

/// `nbft show`: per table its path, the host, and the subsystems, HFIs and discovery controllers
/// in tables as nvme-cli lays them out.
pub fn format_normal(tables: &[(String, Nbft)]) -> String {
    let mut out = String::new();
    for (i, (filename, t)) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{filename}:");
        if let Some(h) = &t.host {
            let nqn = h.nqn.as_deref().unwrap_or("(none)");
            let _ = writeln!(out, "host NQN {nqn}, host ID {}", uuid_text(&h.id));
        }
        if t.hfis.is_empty() && t.ssns.is_empty() && t.discovery.is_empty() && t.security.is_empty()
        {
            out.push_str("(empty)\n");
            continue;
        }
        if !t.ssns.is_empty() {
            let rows: Vec<Vec<String>> = t
                .ssns
                .iter()
                .map(|s| {
                    let hfis: Vec<String> = s.hfis.iter().map(u8::to_string).collect();
                    vec![
                        s.index.to_string(),
                        s.subsys_nqn.clone(),
                        "tcp".into(),
                        ip_text(&s.traddr),
                        s.trsvcid.clone(),
                        hfis.join(","),
                    ]
                })
                .collect();
            let head = ["Idx", "NQN", "Trsp", "Address", "SvcId", "HFIs"];
            grid(&mut out, "NBFT Subsystems", &head, &rows);
        }
        if !t.hfis.is_empty() {
            let rows: Vec<Vec<String>> = t
                .hfis
                .iter()
                .map(|h| {
                    let c = &h.tcp;
                    vec![
                        h.index.to_string(),
                        "tcp".into(),
                        pcidev_text(c.pci_sbdf),
                        mac_text(&c.mac),
                        if c.dhcp_override { "yes" } else { "no" }.into(),
                        ip_text(&c.ip),
                        c.prefix.to_string(),
                        ip_text(&c.gateway),
                        ip_text(&c.primary_dns),
                    ]
                })
                .collect();
            let head = [
                "Idx", "Trsp", "PCI Addr", "MAC Addr", "DHCP", "IP Addr", "Mask", "Gateway", "DNS",
            ];
            grid(&mut out, "NBFT HFIs", &head, &rows);
        }
        if !t.discovery.is_empty() {
            let rows: Vec<Vec<String>> = t
                .discovery
                .iter()
                .map(|d| vec![d.index.to_string(), d.uri.clone(), d.nqn.clone()])
                .collect();
            grid(
                &mut out,
                "NBFT Discovery Controllers",
                &["Idx", "URI", "NQN"],
                &rows,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;

    #[test]
    fn addresses_as_inet_ntop_writes_them() {
        let v6 = |s: &str| ip_text(&IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()));
        assert_eq!(v6("fd09:9a46:b5c1:1fe::10"), "fd09:9a46:b5c1:1fe::10");
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("::102:304"), "::1.2.3.4");
        assert_eq!(v6("1:0:0:1::"), "1:0:0:1::");
        assert_eq!(
            ip_text(&IpAddr::V4(Ipv4Addr::new(192, 168, 49, 10))),
            "192.168.49.10"
        );
    }

    #[test]
    fn ids_macs_and_pci_addresses() {
        let id = [
            0xe3, 0x59, 0xb7, 0xa1, 0x5d, 0x03, 0x77, 0x47, 0xb3, 0xcc, 0x17, 0x54, 0xb8, 0xb8,
            0x19, 0xb9,
        ];
        assert_eq!(uuid_text(&id), "e359b7a1-5d03-7747-b3cc-1754b8b819b9");
        assert_eq!(
            mac_text(&[0x52, 0x54, 0, 0xb8, 0x19, 0xb9]),
            "52:54:00:b8:19:b9"
        );
        assert_eq!(pcidev_text(8), "0:0:1.0");
        assert_eq!(pcidev_text(0x40), "0:0:8.0");
        assert_eq!(pcidev_text(0x0001_1a0b), "1:1a:1.3");
    }

    fn args(dir: &Path, output: OutputFormat) -> NbftArgs {
        NbftArgs {
            cmdline: false,
            output,
            nbft_path: dir.to_path_buf(),
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("nvme-monitor-nbft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nbft");

    #[test]
    fn run_reads_nbft_files_in_order_and_exits_1_on_a_refused_one() {
        let d = tempdir("run");
        for (src, dst) in [
            ("tables/NBFT-static-ipv4", "NBFT2"),
            ("tables/NBFT-dhcp-ipv4", "NBFT"),
            ("tables/NBFT-rhpoc", "other"),
        ] {
            std::fs::copy(Path::new(DATA).join(src), d.join(dst)).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(run_to(&args(&d, OutputFormat::Json), &mut out), 0);
        let text = String::from_utf8(out).unwrap();
        let first = text.find(&format!("\"{}/NBFT\"", d.display())).unwrap();
        let second = text.find(&format!("\"{}/NBFT2\"", d.display())).unwrap();
        assert!(first < second);
        assert!(!text.contains("other"));
        assert!(text.ends_with("]\n"));

        std::fs::copy(
            Path::new(DATA).join("bad/NBFT-random-noise"),
            d.join("NBFT1"),
        )
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(run_to(&args(&d, OutputFormat::Normal), &mut out), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("/NBFT:\n") && text.contains("/NBFT2:\n"),
            "{text}"
        );
        assert!(!text.contains("NBFT1"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn no_directory_or_no_table_is_no_error() {
        let d = tempdir("none");
        let mut out = Vec::new();
        assert_eq!(run_to(&args(&d, OutputFormat::Json), &mut out), 0);
        assert_eq!(out, b"[]\n");
        let mut out = Vec::new();
        assert_eq!(
            run_to(&args(&d.join("missing"), OutputFormat::Normal), &mut out),
            0
        );
        assert!(String::from_utf8(out).unwrap().starts_with("no NBFT in "));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn normal_output_lays_out_each_section() {
        let bytes =
            std::fs::read(Path::new(DATA).join("tables/NBFT-static-ipv4-discovery")).unwrap();
        let t = nbft::parse(&bytes).unwrap();
        let text = format_normal(&[("/t/NBFT".into(), t)]);
        let want_lines = [
            "/t/NBFT:",
            "host NQN nqn.2014-08.org.nvmexpress:uuid:a1b759e3-035d-4777-b3cc-1754b8b819b9, host ID e359b7a1-5d03-7747-b3cc-1754b8b819b9",
            "NBFT Subsystems:",
            "1  |nqn.2022-12.org.nvmexpress.boot.poc:bremer.vagrant-nvmet.subsys02|tcp |192.168.49.10|4420 |1",
            "NBFT HFIs:",
            "1  |tcp |0:0:1.0 |52:54:00:b8:19:b9|no  |192.168.49.50|24  |0.0.0.0|0.0.0.0",
            "NBFT Discovery Controllers:",
            "1  |nvme+tcp://192.168.49.10:4420/|nqn.2014-08.org.nvmexpress.discovery",
        ];
        for l in want_lines {
            assert!(text.lines().any(|x| x == l), "{l:?} not in\n{text}");
        }
        let empty = nbft::parse(&std::fs::read(Path::new(DATA).join("tables/NBFT-empty")).unwrap())
            .unwrap();
        assert!(format_normal(&[("/t/NBFT".into(), empty)]).ends_with("(empty)\n"));
    }
}
