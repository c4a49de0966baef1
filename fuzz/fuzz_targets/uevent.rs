//! Any received netlink payload: parse, classify, and format what the daemon would log.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::uevent::{Classified, Uevent, classify};

fuzz_target!(|data: &[u8]| {
    let Ok(u) = Uevent::parse(data) else {
        return;
    };
    let _ = (u.action(), u.devpath(), u.seqnum());
    if let Classified::Event(event) = classify(&u) {
        let _ = event.to_string();
        if let Some(addr) = event.addr() {
            let _ = addr.to_string();
            let _ = addr.to_addr();
        }
    }
});
