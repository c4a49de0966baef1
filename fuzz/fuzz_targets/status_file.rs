//! The status file: any bytes parse or are refused without a panic; what parses survives render +
//! parse unchanged; and whatever parsed, both presentations and the summary never panic, at any
//! clock (the file's times are not checked against ours, so they may be anything).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::status::{format_json, format_normal, parse, render, summary};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let snap = match parse(&text) {
        Ok(snap) => snap,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let rendered = render(&snap);
    match parse(&rendered) {
        Ok(again) => assert_eq!(
            again, snap,
            "render+parse changed the snapshot:\n{rendered}"
        ),
        Err(err) => panic!("rendered file refused ({err}):\n{rendered}"),
    }
    let _ = summary(&snap);
    for now in [0, snap.daemon.updated, u64::MAX] {
        let _ = format_normal(&snap, &[], now);
        let _ = format_json(&snap, &[], now);
    }
});
