//! The handoff state file: any text parses or is refused without a panic, and what parses
//! survives render + parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::state::{parse, render};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entries = match parse(&text) {
        Ok((entries, _warnings)) => entries,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let rendered = render(entries.iter());
    match parse(&rendered) {
        Ok((again, warnings)) => {
            assert_eq!(
                again, entries,
                "render+parse changed the entries:\n{rendered}"
            );
            assert!(
                warnings.is_empty(),
                "rendered file warns: {warnings:?}\n{rendered}"
            );
        }
        Err(err) => panic!("rendered file refused ({err}):\n{rendered}"),
    }
});
