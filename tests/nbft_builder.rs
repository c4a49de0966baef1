//! The VM tests' NBFT builder (tests/vm/tools/mknbft.c) writes the tables its options describe:
//! our parser, which decodes the real tables in tests/data/nbft exactly, reads back every field the
//! builder was told, and refuses each `--bad` variant at the field it broke. Without this a VM
//! scenario that fails could be blaming the daemon for the builder's mistake.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nvme_monitor::nbft::{self, Availability, Nbft, Structure};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/tools/mknbft.c");

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nbft-builder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The builder, compiled once with tests/vm/run's warning flags, and warnings as errors here so
/// one the VM build would only print fails this test first (not -static: the host may lack a
/// static libc, and the table is the same).
fn builder() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = scratch().join("mknbft");
        let out = Command::new("cc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&bin)
            .arg(SOURCE)
            .output()
            .expect(
                "run cc: the VM tests' tools need a C compiler (apt-get install gcc libc6-dev)",
            );
        assert!(
            out.status.success(),
            "cc {SOURCE} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// Run mknbft writing to the scratch file `name`.
fn run_mknbft(name: &str, args: &[&str]) -> (PathBuf, std::process::Output) {
    let file = scratch().join(name);
    let out = Command::new(builder())
        .arg("-o")
        .arg(&file)
        .args(args)
        .output()
        .expect("run mknbft");
    (file, out)
}

fn build(name: &str, args: &[&str]) -> Vec<u8> {
    let (file, out) = run_mknbft(name, args);
    assert!(
        out.status.success(),
        "mknbft {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&file).expect("read the table mknbft wrote")
}

fn parse(name: &str, args: &[&str]) -> Nbft {
    let bytes = build(name, args);
    nbft::parse(&bytes).unwrap_or_else(|e| panic!("{name}: our parser refused it: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a test address")
}

const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6c0fb4e5-0d2a-4b0e-9d3e-2f1a7c5b9e01";
const HOSTID: &str = "6c0fb4e5-0d2a-4b0e-9d3e-2f1a7c5b9e01";

#[test]
fn two_hfis_two_ssns_and_a_discovery_descriptor() {
    let t = parse(
        "full",
        &[
            "--hostnqn",
            HOSTNQN,
            "--hostid",
            HOSTID,
            "--hfi",
            "52:54:00:4e:42:01,10.99.0.2/24",
            "--hfi",
            "52:54:00:4e:42:02,10.99.1.2/24,vlan=5,gw=10.99.1.1",
            "--ssns",
            "1+2,10.99.0.1,4420,nqn.test:sub1,hdgst,ddgst,nsid=3",
            "--ssns",
            "2,10.99.1.1,4421,nqn.test:sub2,unavailable",
            "--discovery",
            "1,nvme+tcp://10.99.0.1:8009/,nqn.test:disc",
        ],
    );
    let h = t.host.as_ref().expect("a valid control descriptor");
    assert_eq!(h.nqn.as_deref(), Some(HOSTNQN));
    assert!(h.host_id_configured && h.host_nqn_configured);
    // Stored in EFI GUID byte order, as firmware stores it; the daemon connects with HOSTID.
    assert_eq!(&h.id[..4], &[0xe5, 0xb4, 0x0f, 0x6c]);
    assert_eq!(nvme_monitor::nbft_paths::host_id_uuid(&h.id), HOSTID);

    assert_eq!(t.hfis.len(), 2);
    let (a, b) = (&t.hfis[0].tcp, &t.hfis[1].tcp);
    assert_eq!((t.hfis[0].index, t.hfis[1].index), (1, 2));
    assert_eq!(a.mac, [0x52, 0x54, 0, 0x4e, 0x42, 1]);
    assert_eq!(
        (a.ip, a.prefix, a.vlan, a.ip_origin),
        (ip("10.99.0.2"), 24, 0, 1)
    );
    assert!(!a.global_route);
    assert_eq!(b.mac, [0x52, 0x54, 0, 0x4e, 0x42, 2]);
    assert_eq!((b.ip, b.prefix, b.vlan), (ip("10.99.1.2"), 24, 5));
    assert_eq!(b.gateway, ip("10.99.1.1"));
    assert!(b.global_route, "a gateway makes it the default route");

    assert_eq!(t.ssns.len(), 2);
    let (s1, s2) = (&t.ssns[0], &t.ssns[1]);
    assert_eq!((s1.index, s1.subsys_nqn.as_str()), (1, "nqn.test:sub1"));
    assert_eq!((s1.traddr, s1.trsvcid.as_str()), (ip("10.99.0.1"), "4420"));
    assert_eq!((s1.hfis.as_slice(), s1.nsid), (&[1u8, 2][..], 3));
    assert!(s1.pdu_header_digest && s1.data_digest);
    assert_eq!(s1.availability, Availability::Available);
    assert_eq!((s2.traddr, s2.trsvcid.as_str()), (ip("10.99.1.1"), "4421"));
    assert_eq!(s2.hfis, [2]);
    assert!(!s2.pdu_header_digest && !s2.data_digest);
    assert!(s2.unavailable());

    assert_eq!(t.discovery.len(), 1);
    let d = &t.discovery[0];
    assert_eq!((d.index, d.hfi), (1, Some(1)));
    assert_eq!(d.uri, "nvme+tcp://10.99.0.1:8009/");
    assert_eq!(d.nqn, "nqn.test:disc");
}

/// The two shapes libnvme refuses and we accept: an empty secondary-HFI list, and a discovery
/// descriptor without an NQN. The builder must be able to write both, or no VM test reaches them.
#[test]
fn empty_secondary_list_and_empty_discovery_nqn() {
    let t = parse(
        "lenient",
        &[
            "--hostnqn",
            HOSTNQN,
            "--hfi",
            "52:54:00:4e:42:01,fd00:99::2/64,dhcp",
            "--ssns",
            "1+,fd00:99::1,4420,nqn.test:sub1",
            "--discovery",
            "1,nvme+tcp://[fd00:99::1]:8009/",
        ],
    );
    let h = t.host.as_ref().expect("a valid control descriptor");
    assert!(!h.host_id_configured, "no --hostid");
    let c = &t.hfis[0].tcp;
    assert_eq!((c.ip, c.prefix, c.ip_origin), (ip("fd00:99::2"), 64, 3));
    assert_eq!(t.ssns[0].traddr, ip("fd00:99::1"));
    assert_eq!(
        t.ssns[0].hfis,
        [1],
        "an empty secondary list falls back to the primary HFI"
    );
    assert_eq!(t.discovery[0].nqn, nbft::WELL_KNOWN_DISCOVERY_NQN);
}

#[test]
fn each_bad_variant_is_refused_at_the_field_it_broke() {
    let base = [
        "--hostnqn",
        HOSTNQN,
        "--hfi",
        "52:54:00:4e:42:01,10.99.0.2/24",
        "--ssns",
        "1,10.99.0.1,4420,nqn.test:sub1",
    ];
    let cases = [
        ("ssns-nqn-offset", Structure::Ssns(1), "subsystem NQN"),
        ("checksum", Structure::Header, "checksum"),
        ("length", Structure::Header, "length"),
    ];
    for (bad, structure, field) in cases {
        let mut args = base.to_vec();
        args.extend(["--bad", bad]);
        let bytes = build(bad, &args);
        let e = nbft::parse(&bytes).expect_err(bad);
        assert_eq!(
            (e.structure, e.field),
            (structure, field),
            "--bad {bad}: {e}"
        );
    }
    // And without --bad the same table is fine: the refusals above are the variants' doing.
    let bytes = build("good", &base);
    assert!(nbft::parse(&bytes).is_ok());
}

#[test]
fn bad_options_are_refused_with_the_option_named() {
    for args in [
        &["--hostnqn", HOSTNQN, "--hfi", "52:54:00:4e:42,10.0.0.1/24"][..],
        &["--hostnqn", HOSTNQN, "--hfi", "52:54:00:4e:42:01,10.0.0.1"],
        &["--hostnqn", HOSTNQN, "--hostid", "not-a-uuid"],
        &["--hostnqn", HOSTNQN, "--ssns", "3,10.0.0.1,4420,nqn.x"],
    ] {
        let (_, out) = run_mknbft("refused", args);
        assert!(!out.status.success(), "mknbft {args:?} accepted it");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("mknbft:"), "{args:?}: {err}");
    }
}
