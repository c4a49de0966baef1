//! discovery.conf and the kernel command line: any text gives sources and warnings, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::cmdline::parse_cmdline;
use nvme_monitor::config::parse_discovery_conf;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (sources, _errors) = parse_discovery_conf(&text, "fuzz");
    for s in &sources {
        let _ = s.addr.to_string();
    }
    let (nvmf, _warnings) = parse_cmdline(&text);
    for s in &nvmf.discover {
        let _ = s.addr.to_string();
    }
    let _ = nvmf.ignores_discovery_conf();
});
