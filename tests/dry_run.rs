//! The real binary on a machine without NVMe modules (as on the build host): it says that
//! /dev/nvme-fabrics is absent, keeps listening, and exits 0 on SIGTERM. Kernel paths point at an
//! empty temporary tree so the host's own /sys and /dev do not matter.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_tree(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nvme-monitor-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    // The state directory is left for the daemon to create (0700, whatever the umask).
    for sub in ["sys", "dev", "proc", "etc", "run"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    d
}

/// The binary with every kernel, config and state path under the temporary tree `d`.
fn monitor(d: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nvme-monitor"));
    for (opt, sub) in [
        ("--sysfs-root", "sys"),
        ("--dev-root", "dev"),
        ("--proc-root", "proc"),
        ("--etc-dir", "etc"),
        ("--state-dir", "run/state"),
        ("--run-root", "run"),
    ] {
        c.arg(opt).arg(d.join(sub));
    }
    c
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dry_run_without_nvme_modules_listens_and_exits_0_on_sigterm() {
    let d = temp_tree("dry");
    let log = d.join("stderr");
    let mut child = monitor(&d)
        .args(["-v", "--dry-run", "--autoconnect", "--persistent"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The ready file says the startup pass is over and the loop is polling.
    wait_for("the ready file", || d.join("run/state/ready").exists());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it must keep listening"
    );
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "exit status; log:\n{text}");
    assert!(
        text.contains("nvme-fabrics is absent (nvme-fabrics module not loaded)"),
        "{text}"
    );
    assert!(text.contains("SIGTERM: exiting"), "{text}");
    assert!(
        !d.join("run/state/ready").exists(),
        "ready file removed at exit"
    );
    assert!(!d.join("run/udev").exists(), "dry run masks no udev rule");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn wrong_option_names_it_and_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_nvme-monitor"))
        .args(["--queue-size", "9999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--queue-size") && err.contains("9999"),
        "{err}"
    );
}

#[test]
fn a_key_in_a_usage_error_is_not_printed() {
    // nvme-cli's -S is our --silent: the key is then an unexpected argument.
    let key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
    let out = Command::new(env!("CARGO_BIN_EXE_nvme-monitor"))
        .args(["-S", key])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unexpected argument"), "{err}");
    assert!(!err.contains("AAECAwQF"), "{err}");
}

#[test]
fn bad_discovery_conf_line_is_named_and_the_good_one_is_used() {
    let d = temp_tree("conf");
    std::fs::write(
        d.join("etc/discovery.conf"),
        "# comment\n--transport=warp --traddr=1.2.3.4\n--transport=tcp --traddr=192.0.2.1\n",
    )
    .unwrap();
    let out = monitor(&d)
        .args(["-v", "--dry-run", "--once", "-C"])
        .arg(d.join("etc/discovery.conf"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("discovery.conf:2:") && err.contains("warp"),
        "{err}"
    );
    // The good line is tracked and tried: without /dev/nvme-fabrics its discovery fails (exit 3).
    assert!(err.contains("tcp traddr=192.0.2.1,trsvcid=8009"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_second_daemon_on_one_state_directory_refuses_and_once_runs_beside_it() {
    let d = temp_tree("lock");
    let mut first = monitor(&d)
        .args(["-v", "--persistent"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the ready file", || d.join("run/state/ready").exists());
    let ready_before = std::fs::read(d.join("run/state/ready")).unwrap();
    let second = monitor(&d).args(["--persistent"]).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("another nvme-monitor (pid {})", first.id()))
            && err.contains("refusing to start"),
        "{err}"
    );
    // --once beside it: runs, and leaves the daemon's ready and lock files alone.
    let once = monitor(&d)
        .args(["-v", "--once", "--persistent"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&once.stderr);
    assert_eq!(once.status.code(), Some(0), "{err}");
    assert!(err.contains("running beside it"), "{err}");
    assert_eq!(
        std::fs::read(d.join("run/state/ready")).unwrap(),
        ready_before
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the daemon is unaffected"
    );
    let pid = rustix::process::Pid::from_raw(first.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(0));
    std::fs::remove_dir_all(&d).unwrap();
}
