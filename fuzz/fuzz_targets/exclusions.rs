//! exclusions.conf: any text gives entries and warnings, never a panic. Every entry renders to a
//! line that parses back to the same fields, and excludes a controller that has exactly those
//! fields.
//!
//! Input: the file; after a NUL, a candidate to match: byte 0 picks the transport (rdma, fc, tcp,
//! loop), the rest is traddr, trsvcid, nqn, host-traddr, host-iface, hostnqn, hostid, one a line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::addr::Transport;
use nvme_monitor::exclusions::{Candidate, Exclusion, ExclusionList, parse};

const TRANSPORTS: [Transport; 4] = [
    Transport::Rdma,
    Transport::Fc,
    Transport::Tcp,
    Transport::Loop,
];

/// A controller with exactly the entry's fields (tcp where it names no transport).
fn own_candidate<'a>(e: &'a Exclusion) -> Candidate<'a> {
    let get = |key: &str| e.fields().find(|(k, _)| *k == key).map_or("", |(_, v)| v);
    Candidate {
        transport: Transport::from_name(get("transport")).unwrap_or(Transport::Tcp),
        traddr: get("traddr"),
        trsvcid: get("trsvcid"),
        nqn: get("nqn"),
        host_traddr: get("host-traddr"),
        host_iface: get("host-iface"),
        hostnqn: get("hostnqn"),
        hostid: get("hostid"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, candidate) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(file).into_owned();
    let (entries, warnings) = parse(&text, "fuzz");
    assert!(
        warnings.iter().all(|w| w.starts_with("fuzz:")),
        "{warnings:?}"
    );
    let (list, _) = ExclusionList::from_files(&[("fuzz".to_owned(), text)]);
    assert_eq!(list.len(), entries.len());
    for e in &entries {
        let line = format!("[exclusions]\nexclusion = {e}\n");
        let (again, w) = parse(&line, "again");
        assert!(w.is_empty(), "{line:?} warns: {w:?}");
        assert_eq!(again.len(), 1, "{line:?}");
        assert!(again[0].fields().eq(e.fields()), "{line:?}");
        assert!(list.excluded_by(&own_candidate(e)).is_some(), "{line:?}");
    }
    if let Some(c) = candidate {
        let transport = TRANSPORTS[usize::from(c.first().copied().unwrap_or(0) % 4)];
        let rest = String::from_utf8_lossy(c.get(1..).unwrap_or_default());
        let mut f = rest.split('\n');
        let mut next = || f.next().unwrap_or("");
        let c = Candidate {
            transport,
            traddr: next(),
            trsvcid: next(),
            nqn: next(),
            host_traddr: next(),
            host_iface: next(),
            hostnqn: next(),
            hostid: next(),
        };
        if let Some(e) = list.excluded_by(&c) {
            let _ = format!("{}: {e}", e.source);
        }
    }
});
