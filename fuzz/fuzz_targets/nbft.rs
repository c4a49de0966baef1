//! The NBFT parser: any bytes parse or are refused without a panic. Each input is tried twice, as
//! given and with its checksum made right, since nearly every mutation would otherwise stop at the
//! checksum. What parses must hold together (each SSNS reachable through HFIs the table has), and
//! both presentations of `nbft show` must render it without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::nbft::parse;
use nvme_monitor::nbft_show::{format_json, format_normal};

fn check(bytes: &[u8]) {
    let t = match parse(bytes) {
        Ok(t) => t,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for s in &t.ssns {
        assert!(!s.hfis.is_empty(), "SSNS {} without an HFI", s.index);
        for &h in &s.hfis {
            assert!(t.hfi(h).is_some(), "SSNS {} names HFI {h}", s.index);
        }
    }
    let tables = [("/sys/firmware/acpi/tables/NBFT".to_owned(), t)];
    let _ = format_json(&tables);
    let _ = format_normal(&tables);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() > 9 {
        let mut fixed = data.to_vec();
        let len = data
            .get(4..8)
            .map_or(0, |l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .min(fixed.len());
        fixed[9] = 0;
        let sum = fixed[..len].iter().fold(0u8, |s, &b| s.wrapping_add(b));
        fixed[9] = 0u8.wrapping_sub(sum);
        check(&fixed);
    }
});
