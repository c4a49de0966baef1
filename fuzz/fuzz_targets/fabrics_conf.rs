//! nvme-fabrics.conf: any set of files gives a config and warnings, never a panic. What comes out
//! is in the command line's ranges, every message names its file and line, and the `Debug` output
//! of the security settings does not depend on the secrets' values.
//!
//! Input: the main file, then up to three drop-ins, separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::config::check_nqn;
use nvme_monitor::fabrics_conf::{ConfEndpoint, Security, parse_files};

fn check_opts(e: &ConfEndpoint) {
    let o = &e.opts;
    let at_least = |v: Option<u32>, min: u32| v.is_none_or(|n| n >= min && n <= i32::MAX as u32);
    assert!(at_least(o.nr_io_queues, 1) && at_least(o.nr_write_queues, 1));
    assert!(at_least(o.nr_poll_queues, 1) && at_least(o.reconnect_delay, 1));
    assert!(at_least(o.keep_alive_tmo, 0));
    assert!(o.queue_size.is_none_or(|n| (16..=1024).contains(&n)));
    assert!(o.ctrl_loss_tmo.is_none_or(|n| n >= -1));
    assert!(o.fast_io_fail_tmo.is_none_or(|n| n >= -1));
    assert!(o.tos.is_none_or(|n| (0..=255).contains(&n)));
    assert!(
        o.hostnqn.is_none() && o.hostid.is_none(),
        "the identity is the host's"
    );
    assert!(check_nqn(&e.nqn).is_ok(), "{}", e.nqn);
    assert!(e.source.starts_with('f'), "{}", e.source);
    let d = e.to_discovery_source();
    assert_eq!(d.addr, e.addr);
    assert!(!d.persistent);
    let _ = e.addr.to_string();
}

fn redacted_the_same(s: &Security) {
    let blank = |v: &Option<String>| v.as_ref().map(|_| String::new());
    let other = Security {
        tls_key: blank(&s.tls_key),
        kxchap_secret: blank(&s.kxchap_secret),
        kxchap_ctrl_secret: blank(&s.kxchap_ctrl_secret),
        ..s.clone()
    };
    assert_eq!(format!("{s:?}"), format!("{other:?}"));
}

fuzz_target!(|data: &[u8]| {
    let files: Vec<(String, String)> = data
        .split(|&b| b == 0)
        .take(4)
        .enumerate()
        .map(|(i, f)| (format!("f{i}"), String::from_utf8_lossy(f).into_owned()))
        .collect();
    let (conf, warnings) = parse_files(&files);
    let located = |m: &String| m.starts_with('f') && m.contains(':');
    assert!(warnings.iter().all(located), "{warnings:?}");
    assert!(conf.ignored.iter().all(located), "{:?}", conf.ignored);
    if let Some(nqn) = &conf.hostnqn {
        assert!(check_nqn(nqn).is_ok());
    }
    redacted_the_same(&conf.host_security);
    for e in conf.discovery.iter().chain(&conf.subsystems) {
        check_opts(e);
        redacted_the_same(&e.security);
    }
});
