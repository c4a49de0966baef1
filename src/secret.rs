//! DH-HMAC-CHAP secrets: checked before use, never shown.
//!
//! A key is `DHHC-1:<hh>:<base64 of key || crc32(key), little-endian>:` (NVMe Base Specification
//! 8.13.5.8; the kernel's `nvme_auth_extract_key`): `hh` 00 (used as is) or 01/02/03 (transformed
//! with SHA-256/384/512, so the key must be 32/48/64 bytes), the key itself 32, 48 or 64 bytes.
//! [`check_key`] finds what the kernel would refuse (as a bare EINVAL on the whole connect) and says
//! which part is wrong, never quoting the key. A value that starts with `/` names a file that
//! holds the key, which must not be readable by group or others (as ssh insists for its keys):
//! secrets on a command line are visible in `ps`.
//!
//! [`Secret`] holds a checked key: its `Debug` and `Display` print `<redacted>`, and it is wiped
//! when dropped. [`scrub`] is the last line of defence: the logger and the status file run every
//! line through it, so a key that reached a message by a path nobody thought of still does not
//! leave the process.

use std::borrow::Cow;
use std::fmt;

/// What is wrong with a key, without quoting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    Prefix,
    HashId,
    Base64,
    Length(usize),
    HashLength { hash: u8, len: usize },
    Crc,
    Terminator,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KeyProblem::Prefix => f.write_str("does not start with DHHC-1:"),
            KeyProblem::HashId => {
                f.write_str("its hash id (after DHHC-1:) is not 00, 01, 02 or 03")
            }
            KeyProblem::Base64 => f.write_str("its key part is not base64"),
            KeyProblem::Length(n) => write!(
                f,
                "its key part decodes to {n} bytes, not 36, 52 or 68 (a 32, 48 or 64 byte key and its CRC)"
            ),
            KeyProblem::HashLength { hash, len } => write!(
                f,
                "hash id {hash:02} needs a {} byte key, this one has {len}",
                32 + 16 * (u32::from(hash) - 1)
            ),
            KeyProblem::Crc => {
                f.write_str("its CRC does not match the key (a mistyped or truncated key)")
            }
            KeyProblem::Terminator => f.write_str("does not end with ':'"),
        }
    }
}

/// Is `text` a key the kernel takes? The key is never part of the answer.
pub fn check_key(text: &str) -> Result<(), KeyProblem> {
    let rest = text.strip_prefix("DHHC-1:").ok_or(KeyProblem::Prefix)?;
    let (hash, rest) = rest.split_once(':').ok_or(KeyProblem::HashId)?;
    let hash = match hash {
        "00" => 0,
        "01" => 1,
        "02" => 2,
        "03" => 3,
        _ => return Err(KeyProblem::HashId),
    };
    let b64 = rest.strip_suffix(':').ok_or(KeyProblem::Terminator)?;
    let mut bytes = base64_decode(b64).ok_or(KeyProblem::Base64)?;
    let result = check_decoded(hash, &bytes);
    bytes.fill(0);
    std::hint::black_box(&bytes);
    result
}

fn check_decoded(hash: u8, bytes: &[u8]) -> Result<(), KeyProblem> {
    let len = bytes.len();
    if !matches!(len, 36 | 52 | 68) {
        return Err(KeyProblem::Length(len));
    }
    let (key, crc) = bytes.split_at(len - 4);
    if hash != 0 && key.len() != 32 + 16 * (usize::from(hash) - 1) {
        return Err(KeyProblem::HashLength {
            hash,
            len: key.len(),
        });
    }
    if crc32(key).to_le_bytes() != crc {
        return Err(KeyProblem::Crc);
    }
    Ok(())
}

/// Standard base64 (RFC 4648 §4) with `=` padding, as the kernel's `base64_decode`.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.is_empty() || s.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let last = s.len() / 4 - 1;
    for (i, quad) in s.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and the kernel's `~crc32(~0, ...)`).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                crc >> 1 ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A checked DH-HMAC-CHAP key and where it came from (`--dhchap-secret`, `FILE:LINE`, a key
/// file's path): the source goes into messages, the key never does.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: String,
    source: String,
}

impl Secret {
    /// `value` from `source`: a key, or (starting with `/`) a file holding one. Errors name the
    /// source and what is wrong, never the key.
    pub fn load(value: &str, source: &str) -> Result<Secret, String> {
        if value.starts_with('/') {
            return Secret::from_file(std::path::Path::new(value), source);
        }
        check_key(value).map_err(|p| format!("{source}: the DH-HMAC-CHAP key {p}"))?;
        Ok(Secret {
            key: value.to_string(),
            source: source.to_string(),
        })
    }

    /// The checks are made on the descriptor that is read (no window between check and read);
    /// a symlink is followed (secrets mounted by a container runtime are symlinks), and what it
    /// leads to is checked. O_NONBLOCK: a FIFO put there must not hang the start; O_NOCTTY: a tty
    /// put there must not become our controlling terminal.
    fn from_file(path: &std::path::Path, source: &str) -> Result<Secret, String> {
        use std::io::Read as _;
        use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
        let shown = path.display();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| format!("{source}: key file {shown}: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("{source}: key file {shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{source}: key file {shown} is not a regular file"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "{source}: key file {shown} is readable or writable by group or others (mode {:04o}): chmod 600 it",
                meta.mode() & 0o7777
            ));
        }
        // As ssh: a key that another user could replace is not ours to trust.
        let euid = rustix::process::geteuid().as_raw();
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(format!(
                "{source}: key file {shown} is owned by uid {}, not by root or uid {euid}: chown it",
                meta.uid()
            ));
        }
        let mut raw = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
        if let Err(e) = file.read_to_end(&mut raw) {
            wipe_bytes(raw);
            return Err(format!("{source}: key file {shown}: {e}"));
        }
        let mut text = match String::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                wipe_bytes(e.into_bytes());
                return Err(format!("{source}: key file {shown} is not UTF-8 text"));
            }
        };
        let key = text.trim();
        let checked = check_key(key)
            .map_err(|p| format!("{source}: key file {shown}: the DH-HMAC-CHAP key {p}"));
        let secret = checked.map(|()| Secret {
            key: key.to_string(),
            source: format!("{source} ({shown})"),
        });
        wipe(&mut text);
        secret
    }

    /// The key, for the connect string only.
    pub fn expose(&self) -> &str {
        &self.key
    }

    /// Where it came from, for messages and the state file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Say where it came from more precisely (a discovery.conf line, once its number is known).
    pub fn relabel(&mut self, source: String) {
        self.source = source;
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.key);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted from {}>", self.source)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Keys are configured: no core dump of this process (it would hold them), and /proc/PID/mem
/// and ptrace are root's alone (`prctl(PR_SET_DUMPABLE, 0)`). Idempotent.
pub fn keep_out_of_core_dumps() {
    use rustix::process::{DumpableBehavior, set_dumpable_behavior};
    match set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        Ok(()) => debug!("DH-HMAC-CHAP keys configured: no core dumps of this process"),
        Err(e) => {
            warn!("prctl(PR_SET_DUMPABLE, 0): {e}: a core dump of this process would hold its keys")
        }
    }
}

/// Overwrite a string's bytes before it is freed (a connect string, a key), so a later heap
/// reuse or a core dump does not find it.
pub fn wipe(s: &mut String) {
    wipe_bytes(std::mem::take(s).into_bytes());
}

/// Zero all of `bytes`' buffer, the spare capacity too (a read that failed left its bytes
/// there with the length reset), then free it.
pub fn wipe_bytes(mut bytes: Vec<u8>) {
    let cap = bytes.capacity();
    bytes.clear();
    bytes.resize(cap, 0);
    std::hint::black_box(&bytes);
}

/// The markers a secret value starts with (DH-HMAC-CHAP keys, TLS PSKs in interchange format) and
/// the option tokens that carry one.
const MARKERS: [&str; 4] = [
    "DHHC-1:",
    "NVMeTLSkey-1:",
    "dhchap_secret=",
    "dhchap_ctrl_secret=",
];

/// A marker found in a record: hide from `keep` bytes after its start (a token's name stays),
/// the value beginning `skip` bytes after it.
pub struct Marker {
    pub keep: usize,
    pub skip: usize,
}

/// The first marker in `bytes`, for the logger's in-place scrub.
pub fn find_marker(bytes: &[u8]) -> Option<(usize, Marker)> {
    (0..bytes.len()).find_map(|i| {
        MARKERS.iter().find_map(|m| {
            bytes[i..].starts_with(m.as_bytes()).then(|| {
                let keep = if m.starts_with("dhchap") { m.len() } else { 0 };
                (
                    i,
                    Marker {
                        keep,
                        skip: m.len(),
                    },
                )
            })
        })
    })
}

/// Where a secret value ends: the next separator of an option string, a quote, or white space.
/// One rule for [`scrub`] and the logger's in-place scrub, so they hide the same bytes.
pub fn ends_secret(b: u8) -> bool {
    matches!(b, b',' | b'\'' | b'"') || b.is_ascii_whitespace()
}

/// `text` with every secret value replaced by `<redacted>`: from a marker to the next `,`,
/// whitespace, quote or the end. Borrowed (no copy) when there is none, the common case.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let first = MARKERS.iter().filter_map(|m| text.find(m)).min();
    let Some(mut at) = first else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let marker = MARKERS
            .iter()
            .find(|m| from.starts_with(**m))
            .map_or(0, |m| m.len());
        // Keep a token's name (dhchap_secret=), drop its value.
        let keep = if from.starts_with("dhchap") {
            marker
        } else {
            0
        };
        out.push_str(&from[..keep]);
        out.push_str("<redacted>");
        let value = &from[marker..];
        let end = value
            .find(|c: char| c.is_ascii() && ends_secret(c as u8))
            .unwrap_or(value.len());
        rest = &value[end..];
        match MARKERS.iter().filter_map(|m| rest.find(m)).min() {
            Some(next) => at = next,
            None => {
                out.push_str(rest);
                return Cow::Owned(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made for these tests (32 bytes 0x00..0x1f, 48 of 0x01..=0x30, 64 of 0xff) with their CRCs,
    // the way `nvme gen-dhchap-key` lays a key out.
    pub(crate) const KEY_00: &str = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
    pub(crate) const KEY_02: &str =
        "DHHC-1:02:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wyg3Bcw==:";
    pub(crate) const KEY_03: &str = "DHHC-1:03://///////////////////////////////////////////////////////////////////////////////////7qHYQ8=:";

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn base64_round_trips_the_rfc_vectors() {
        for (text, bytes) in [
            ("Zg==", &b"f"[..]),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
        ] {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
        }
        for bad in ["", "Zg=", "Z===", "Zg==Zg==", "Zm9v!mFy", "Zm 9"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn good_keys_pass() {
        for k in [KEY_00, KEY_02, KEY_03] {
            assert_eq!(check_key(k), Ok(()), "{k}");
        }
    }

    #[test]
    fn each_bad_part_is_named() {
        let cases = [
            ("DHHC-2:00:AAAA:", KeyProblem::Prefix),
            (
                "DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
                KeyProblem::HashId,
            ),
            (
                "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR",
                KeyProblem::Terminator,
            ),
            ("DHHC-1:00:AAEC*wQF:", KeyProblem::Base64),
            ("DHHC-1:00:AAECAwQF:", KeyProblem::Length(6)),
            // KEY_00's 32 bytes under hash 02 (which needs 48).
            (
                "DHHC-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
                KeyProblem::HashLength { hash: 2, len: 32 },
            ),
            // One key character changed: the CRC no longer matches.
            (
                "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:",
                KeyProblem::Crc,
            ),
            (
                "DHHC-1:00:BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
                KeyProblem::Crc,
            ),
        ];
        for (key, want) in cases {
            assert_eq!(check_key(key), Err(want), "{key}");
        }
    }

    #[test]
    fn errors_name_the_source_never_the_key() {
        let bad = "DHHC-1:00:BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        let e = Secret::load(bad, "/etc/nvme/discovery.conf:3").unwrap_err();
        assert!(e.starts_with("/etc/nvme/discovery.conf:3: "), "{e}");
        assert!(e.contains("CRC"), "{e}");
        assert!(!e.contains("BAECAwQF"), "{e}");
        let s = Secret::load(KEY_00, "--dhchap-secret").unwrap();
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted from --dhchap-secret>");
        assert_eq!(s.expose(), KEY_00);
    }

    #[test]
    fn key_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("nm-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("host.key");
        std::fs::write(&file, format!("{KEY_02}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = file.to_str().unwrap();
        let e = Secret::load(path, "--dhchap-secret").unwrap_err();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("AQIDBAUG"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = Secret::load(path, "--dhchap-secret").unwrap();
        assert_eq!(s.expose(), KEY_02, "the newline is not part of the key");
        assert!(s.source().contains("host.key"));
        std::fs::write(&file, "DHHC-1:00:AAECAwQF:\n").unwrap();
        let e = Secret::load(path, "x.conf:2").unwrap_err();
        assert!(
            e.contains("decodes to 6 bytes") && !e.contains("AAECAwQF"),
            "{e}"
        );
        let e = Secret::load("/nonexistent/key", "x.conf:2").unwrap_err();
        assert!(e.starts_with("x.conf:2: key file /nonexistent/key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_file_is_checked_where_it_is_read_and_a_fifo_does_not_hang() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("nm-secret-fd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("host.key");
        std::fs::write(&file, format!("{KEY_02}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        // A symlink (as container runtimes mount secrets) leads to the file, which is checked.
        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let s = Secret::load(link.to_str().unwrap(), "t").unwrap();
        assert_eq!(s.expose(), KEY_02);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Secret::load(link.to_str().unwrap(), "t").unwrap_err();
        assert!(e.contains("mode 0640"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Owned by another user who is not root: refused (only checkable when we may chown).
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&file, Some(4242), None).unwrap();
            let e = Secret::load(file.to_str().unwrap(), "t").unwrap_err();
            assert!(e.contains("owned by uid 4242"), "{e}");
            assert!(!e.contains("AQIDBAUG"), "{e}");
        }
        let fifo = dir.join("fifo.key");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status();
        if made.is_ok_and(|s| s.success()) {
            let e = Secret::load(fifo.to_str().unwrap(), "t").unwrap_err();
            assert!(e.contains("not a regular file"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn scrub_hides_every_key_and_keeps_the_rest() {
        let line = format!(
            "connect nqn=n,transport=tcp,dhchap_secret={KEY_00},dhchap_ctrl_secret={KEY_02},keep_alive_tmo=5 (refused)"
        );
        let s = scrub(&line);
        assert_eq!(
            s,
            "connect nqn=n,transport=tcp,dhchap_secret=<redacted>,dhchap_ctrl_secret=<redacted>,keep_alive_tmo=5 (refused)"
        );
        assert_eq!(
            scrub(&format!("key '{KEY_03}' and NVMeTLSkey-1:01:abc= end")),
            "key '<redacted>' and <redacted> end"
        );
        // A malformed value after the token is hidden too.
        assert_eq!(
            scrub("x dhchap_secret=oops,y"),
            "x dhchap_secret=<redacted>,y"
        );
        assert!(matches!(scrub("nothing to hide"), Cow::Borrowed(_)));
    }
}
