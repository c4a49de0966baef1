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

/// Longest record written, prefix and newline included; longer messages are cut at a character
/// boundary and end in [`CUT_MARK`].
///
/// /dev/kmsg answers EINVAL to a whole write longer than the kernel's LOG_LINE_MAX, and the record
/// is lost: 1024 - PREFIX_MAX, where PREFIX_MAX is 32, or 48 with CONFIG_PRINTK_CALLER (newer
/// kernels allow 1024, PRINTKRB_RECORD_MAX). 976 fits all of them. Stderr records use the same
/// limit: one buffer, one rule.
///
/// # References
/// - kernel/printk/printk.c `devkmsg_write` (`len > LOG_LINE_MAX`), `LOG_LINE_MAX`, `PREFIX_MAX`
/// - kernel/printk/internal.h (6.5+) `PRINTKRB_RECORD_MAX`
pub const RECORD_MAX: usize = 1024 - 48;
const _: () = assert!(RECORD_MAX < 992);

/// Ends a record that was cut; ASCII, so dmesg shows it as is (it escapes other bytes).
pub const CUT_MARK: &str = " [cut]";

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
        if self.cut {
            return Ok(()); // nothing after a cut, or the record would skip text in its middle
        }
        let room = RECORD_MAX - CUT_MARK.len() - 1 - self.len; // the mark and "\n" always fit
        let mut n = s.len().min(room);
        // Whole characters only: a record stays valid UTF-8.
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self.cut = n < s.len();
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
    scrub_record(rec);
    if rec.cut {
        rec.buf[rec.len..rec.len + CUT_MARK.len()].copy_from_slice(CUT_MARK.as_bytes());
        rec.len += CUT_MARK.len();
    }
    rec.buf[rec.len] = b'\n';
    rec.len += 1;
}

/// Hide every secret value in the record, in place ([`crate::secret::scrub`]'s rule, without
/// allocating): no code path that forgot to redact can put a key on stderr or in the kernel log.
fn scrub_record(rec: &mut Record) {
    const HIDDEN: &[u8] = b"<redacted>";
    let mut from = 0;
    while let Some((at, marker)) = crate::secret::find_marker(&rec.buf[from..rec.len]) {
        let start = from + at + marker.keep;
        let end = rec.buf[start + marker.skip - marker.keep..rec.len]
            .iter()
            .position(|&b| crate::secret::ends_secret(b))
            .map_or(rec.len, |n| start + marker.skip - marker.keep + n);
        let value = end - start;
        if value >= HIDDEN.len() {
            rec.buf[start..start + HIDDEN.len()].copy_from_slice(HIDDEN);
            rec.buf.copy_within(end..rec.len, start + HIDDEN.len());
            rec.len -= value - HIDDEN.len();
            from = start + HIDDEN.len();
        } else {
            rec.buf[start..end].fill(b'*');
            from = end;
        }
    }
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
    fn keys_never_reach_a_record() {
        let key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        for target in [Target::Stderr, Target::Kmsg] {
            let s = fmt(
                target,
                Level::Error,
                format_args!(
                    "connect nqn=x,dhchap_secret={key},dhchap_ctrl_secret=ab,tos=1 '{key}'"
                ),
            );
            assert!(!s.contains("AAECAwQF"), "{s}");
            assert!(
                s.ends_with("connect nqn=x,dhchap_secret=<redacted>,dhchap_ctrl_secret=**,tos=1 '<redacted>'\n"),
                "{s}"
            );
        }
        // Cut in the middle of a key: what is left of it is hidden too.
        let long = "a".repeat(RECORD_MAX - 60);
        let s = fmt(Target::Stderr, Level::Info, format_args!("{long} {key}"));
        assert!(!s.contains("AAECAw"), "{s}");
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
        for target in [Target::Stderr, Target::Kmsg] {
            let s = fmt(target, Level::Info, format_args!("{long}"));
            assert_eq!(s.len(), RECORD_MAX);
            assert!(s.ends_with("a [cut]\n"), "{s}");
        }
        // The longest record that is not cut carries no mark.
        let prefix = "nvme-monitor: info: ".len();
        let fits = "b".repeat(RECORD_MAX - CUT_MARK.len() - 1 - prefix);
        let s = fmt(Target::Stderr, Level::Info, format_args!("{fits}"));
        assert!(s.ends_with("b\n") && s.len() < RECORD_MAX, "{s}");
    }

    #[test]
    fn kmsg_record_stays_under_the_kernel_limit() {
        let long = "x".repeat(2000);
        let s = fmt(
            Target::Kmsg,
            Level::Error,
            format_args!("unable to connect {long}: {}", "tail"),
        );
        assert!(s.starts_with("<3>nvme-monitor[42]: unable to connect xxx"));
        assert!(s.len() <= RECORD_MAX && s.len() < 992);
        assert!(!s.contains("tail"), "nothing is written after the cut");
    }

    #[test]
    fn cut_falls_on_a_character_boundary() {
        // 3-byte characters at every offset relative to the limit: the record stays UTF-8.
        for pad in 0..3 {
            let text = format!("{}{}", "p".repeat(pad), "€".repeat(1000));
            let mut rec = Record {
                buf: [0; RECORD_MAX],
                len: 0,
                cut: false,
            };
            format_record(
                &mut rec,
                Target::Kmsg,
                Level::Info,
                42,
                format_args!("{text}"),
            );
            let s = std::str::from_utf8(&rec.buf[..rec.len]).expect("valid UTF-8");
            assert!(s.ends_with("€ [cut]\n"), "{s}");
            assert!(
                s.len() <= RECORD_MAX && s.len() > RECORD_MAX - 3,
                "{}",
                s.len()
            );
        }
    }

    #[test]
    fn newlines_are_folded() {
        let s = fmt(Target::Stderr, Level::Info, format_args!("a\nb"));
        assert_eq!(s, "nvme-monitor: info: a b\n");
    }
}
