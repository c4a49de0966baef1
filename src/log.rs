//! Logging to stderr or /dev/kmsg, formatted into a fixed stack buffer (no allocation per message).
//!
//! An initramfs has no journal, so `--log kmsg` writes `<prio>nvme-monitor[pid]: text` records to
//! /dev/kmsg where they end up in dmesg next to the kernel's own NVMe messages.
//!
//! # References
//! - Documentation/ABI/testing/dev-kmsg (record format, priority prefix)

use std::fmt::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Severity, most severe first; numeric order is used for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// syslog priority used in the kmsg record prefix.
    fn syslog_prio(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }
}

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stderr,
    Kmsg,
}

/// Longest record; longer ones are cut and end in "...". /dev/kmsg accepts up to 1 KiB per record.
pub const RECORD_MAX: usize = 1000;

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static KMSG: OnceLock<OwnedFd> = OnceLock::new();

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Switch to /dev/kmsg under `dev`. On failure we keep logging to stderr and return the error.
pub fn use_kmsg(dev: &std::path::Path) -> crate::error::Result<()> {
    use crate::error::Context;
    let path = dev.join("kmsg");
    let fd = rustix::fs::open(
        &path,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOCTTY,
        rustix::fs::Mode::empty(),
    )
    .context(|| format!("open {}", path.display()))?;
    let _ = KMSG.set(fd);
    Ok(())
}

/// A fmt::Write sink over a fixed buffer that truncates instead of failing.
struct Record {
    buf: [u8; RECORD_MAX],
    len: usize,
    cut: bool,
}

impl fmt::Write for Record {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = RECORD_MAX - 4 - self.len; // keep space for "...\n"
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.cut = true;
        }
        Ok(())
    }
}

/// Format one record; pure so it can be tested.
fn format_record(rec: &mut Record, target: Target, level: Level, pid: u32, args: fmt::Arguments) {
    rec.len = 0;
    rec.cut = false;
    let _ = match target {
        Target::Kmsg => write!(rec, "<{}>nvme-monitor[{}]: ", level.syslog_prio(), pid),
        Target::Stderr => write!(rec, "nvme-monitor: {}: ", level.name()),
    };
    let _ = rec.write_fmt(args);
    // A record is one line: fold embedded newlines so kmsg does not split or reject it.
    for b in &mut rec.buf[..rec.len] {
        if *b == b'\n' {
            *b = b' ';
        }
    }
    if rec.cut {
        rec.buf[rec.len..rec.len + 3].copy_from_slice(b"...");
        rec.len += 3;
    }
    rec.buf[rec.len] = b'\n';
    rec.len += 1;
}

#[doc(hidden)]
pub fn write(level: Level, args: fmt::Arguments) {
    if !enabled(level) {
        return;
    }
    let mut rec = Record {
        buf: [0; RECORD_MAX],
        len: 0,
        cut: false,
    };
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    match KMSG.get() {
        Some(fd) => {
            format_record(&mut rec, Target::Kmsg, level, pid, args);
            let _ = rustix::io::write(fd.as_fd(), &rec.buf[..rec.len]);
        }
        None => {
            format_record(&mut rec, Target::Stderr, level, pid, args);
            let _ = rustix::io::write(rustix::stdio::stderr(), &rec.buf[..rec.len]);
        }
    }
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::write($crate::log::Level::Debug, format_args!($($arg)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(target: Target, level: Level, args: fmt::Arguments) -> String {
        let mut rec = Record {
            buf: [0; RECORD_MAX],
            len: 0,
            cut: false,
        };
        format_record(&mut rec, target, level, 42, args);
        String::from_utf8(rec.buf[..rec.len].to_vec()).unwrap()
    }

    #[test]
    fn stderr_record() {
        let s = fmt(Target::Stderr, Level::Warn, format_args!("slot {} full", 3));
        assert_eq!(s, "nvme-monitor: warning: slot 3 full\n");
    }

    #[test]
    fn kmsg_record_has_priority_and_pid() {
        let s = fmt(Target::Kmsg, Level::Error, format_args!("x"));
        assert_eq!(s, "<3>nvme-monitor[42]: x\n");
        let s = fmt(Target::Kmsg, Level::Debug, format_args!("y"));
        assert_eq!(s, "<7>nvme-monitor[42]: y\n");
    }

    #[test]
    fn long_record_is_cut_not_dropped() {
        let long = "a".repeat(5000);
        let s = fmt(Target::Stderr, Level::Info, format_args!("{long}"));
        assert!(s.len() <= RECORD_MAX);
        assert!(s.ends_with("...\n"));
    }

    #[test]
    fn newlines_are_folded() {
        let s = fmt(Target::Stderr, Level::Info, format_args!("a\nb"));
        assert_eq!(s, "nvme-monitor: info: a b\n");
    }
}
