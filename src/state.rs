//! The handoff state file: the discovery controllers we own, for the next instance to adopt.
//!
//! The initramfs instance runs with `--keep` and leaves its discovery controllers up; the instance
//! started after switch-root reads this file and adopts each controller that sysfs still shows
//! unchanged. The file is rewritten atomically (temporary file + rename) whenever the set changes, so
//! a SIGKILL at any point leaves either the old or the new complete file.
//!
//! Format (line based, UTF-8, version 1):
//! ```text
//! nvme-monitor-state 1
//! dc nvme0 transport=tcp traddr=192.168.1.3 trsvcid=8009 host_traddr= host_iface= hostnqn= cntlid=1 subsysnqn=nqn.2014-08.org.nvmexpress.discovery origin=config
//! end 1
//! ```
//! Values are percent-escaped (`%`, space, control bytes). `end N` closes the file and counts the
//! `dc` lines, so a truncated or hand-shortened file is detected.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::addr::{FixedStr, Nqn, Transport, TransportAddr};
use crate::error::{Context, Error, Result};
use crate::table::Origin;

pub const MAGIC: &str = "nvme-monitor-state";
pub const VERSION: u32 = 1;
pub const FILE_NAME: &str = "state";

/// One discovery controller we own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// N of /dev/nvmeN.
    pub instance: u32,
    pub addr: TransportAddr,
    pub cntlid: u16,
    pub subsysnqn: Nqn,
    pub origin: Origin,
    pub ino: u64,
}

/// Why a state file was not used as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    Empty,
    BadMagic,
    /// Written by a newer (or unknown) version: we cannot know what its lines mean.
    Version(String),
    /// No `end` line, or its count disagrees: truncated or hand-edited.
    Truncated,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Empty => f.write_str("file is empty"),
            StateError::BadMagic => write!(f, "first line is not '{MAGIC} {VERSION}'"),
            StateError::Version(v) => {
                write!(f, "unsupported version '{v}' (this is version {VERSION})")
            }
            StateError::Truncated => {
                f.write_str("no valid 'end' line: file is truncated or was edited")
            }
        }
    }
}

fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        // Non-ASCII bytes too: the file is read back byte for byte, not char for char.
        if b == b'%' || b <= b' ' || b >= 0x7f {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file's text for `entries`.
pub fn render<'a>(entries: impl Iterator<Item = &'a StateEntry>) -> String {
    let mut out = format!("{MAGIC} {VERSION}\n");
    let mut n = 0;
    for e in entries {
        n += 1;
        out.push_str(&format!("dc nvme{}", e.instance));
        let fields: [(&str, &str); 7] = [
            ("transport", e.addr.transport.name()),
            ("traddr", e.addr.traddr.as_str()),
            ("trsvcid", e.addr.trsvcid.as_str()),
            ("host_traddr", e.addr.host_traddr.as_str()),
            ("host_iface", e.addr.host_iface.as_str()),
            ("hostnqn", e.addr.hostnqn.as_str()),
            ("subsysnqn", e.subsysnqn.as_str()),
        ];
        for (k, v) in fields {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            escape(v, &mut out);
        }
        out.push_str(&format!(
            " cntlid={} origin={}\n",
            e.cntlid,
            e.origin.name()
        ));
    }
    out.push_str(&format!("end {n}\n"));
    out
}

/// Parse one `dc` line (without the leading `dc `).
fn parse_dc(line: &str) -> std::result::Result<StateEntry, String> {
    let mut words = line.split(' ');
    let name = words.next().unwrap_or("");
    let instance: u32 = name
        .strip_prefix("nvme")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad device name '{name}'"))?;
    let (mut transport, mut cntlid, mut origin) = (None, None, None);
    let mut strs: [(&str, Option<String>); 6] = [
        ("traddr", None),
        ("trsvcid", None),
        ("host_traddr", None),
        ("host_iface", None),
        ("hostnqn", None),
        ("subsysnqn", None),
    ];
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("field '{w}' has no '='"))?;
        let v = unescape(v).ok_or_else(|| format!("bad escape in {k}"))?;
        match k {
            "transport" => {
                transport = Some(
                    Transport::from_name(&v).ok_or_else(|| format!("unknown transport '{v}'"))?,
                )
            }
            "cntlid" => cntlid = Some(v.parse::<u16>().map_err(|_| format!("bad cntlid '{v}'"))?),
            "origin" => {
                origin = Some(Origin::from_name(&v).ok_or_else(|| format!("unknown origin '{v}'"))?)
            }
            _ => match strs.iter_mut().find(|(name, _)| *name == k) {
                Some((_, slot)) => *slot = Some(v),
                None => return Err(format!("unknown field '{k}'")),
            },
        }
    }
    let get = |i: usize| {
        strs[i]
            .1
            .as_deref()
            .ok_or_else(|| format!("missing {}", strs[i].0))
    };
    let transport = transport.ok_or("missing transport")?;
    let mut addr = TransportAddr::new(transport, get(0)?, get(1)?, get(2)?, get(3)?)
        .map_err(|f| format!("{f} too long"))?;
    addr.hostnqn = FixedStr::new(get(4)?).ok_or("hostnqn too long")?;
    let subsysnqn = Nqn::new(get(5)?).ok_or("subsysnqn too long")?;
    Ok(StateEntry {
        instance,
        addr,
        cntlid: cntlid.ok_or("missing cntlid")?,
        subsysnqn,
        origin: origin.ok_or("missing origin")?,
        ino: 0,
    })
}

/// Parse a state file. A bad header or missing trailer refuses the whole file; a bad `dc` line is
/// reported in the warnings and skipped (not adopting is safe: an unadopted controller is never deleted).
pub fn parse(text: &str) -> std::result::Result<(Vec<StateEntry>, Vec<String>), StateError> {
    let mut lines = text.split('\n');
    let header = lines
        .next()
        .filter(|h| !h.is_empty())
        .ok_or(StateError::Empty)?;
    let version = header
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(StateError::BadMagic)?;
    if version != VERSION.to_string() {
        return Err(StateError::Version(version.chars().take(20).collect()));
    }
    let (mut entries, mut warnings) = (Vec::new(), Vec::new());
    let mut dc_lines = 0u64;
    let mut end = None;
    for (i, line) in lines.enumerate() {
        let lineno = i + 2;
        if end.is_some() {
            if !line.is_empty() {
                return Err(StateError::Truncated);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("dc ") {
            dc_lines += 1;
            match parse_dc(rest) {
                Ok(e) => entries.push(e),
                Err(why) => warnings.push(format!("line {lineno}: {why}")),
            }
        } else if let Some(n) = line.strip_prefix("end ") {
            end = Some(n.parse::<u64>().map_err(|_| StateError::Truncated)?);
        } else if !line.is_empty() {
            warnings.push(format!("line {lineno}: not a state line"));
        }
    }
    if end != Some(dc_lines) {
        return Err(StateError::Truncated);
    }
    Ok((entries, warnings))
}

/// Replace `dir/state` atomically: write a temporary file (mode 0600), fsync, rename over the old one.
pub fn write(dir: &Path, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .context(|| format!("create {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .context(|| format!("write {}", tmp.display()))?;
    f.sync_all().context(|| format!("sync {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)
        .context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// The state file's text, `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::invalid(format!("read {}", path.display()), "not UTF-8")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> StateEntry {
        let mut addr = TransportAddr::new(Transport::Tcp, "127.0.0.1", "8009", "", "").unwrap();
        addr.hostnqn = FixedStr::new("nqn.2014-08.org.nvmexpress:uuid:0f01fb42").unwrap();
        StateEntry {
            instance: i,
            addr,
            cntlid: 7,
            subsysnqn: Nqn::new("nqn.2014-08.org.nvmexpress.discovery").unwrap(),
            origin: Origin::Config,
            ino: 0,
        }
    }

    #[test]
    fn round_trip() {
        let es = vec![entry(0), entry(3)];
        let text = render(es.iter());
        assert!(text.starts_with("nvme-monitor-state 1\ndc nvme0 transport=tcp traddr=127.0.0.1 "));
        assert!(text.ends_with("end 2\n"));
        let (back, warnings) = parse(&text).unwrap();
        assert_eq!(back, es);
        assert!(warnings.is_empty());
    }

    #[test]
    fn empty_set_round_trips() {
        let text = render([].iter());
        assert_eq!(text, "nvme-monitor-state 1\nend 0\n");
        assert_eq!(parse(&text).unwrap().0, vec![]);
    }

    #[test]
    fn escapes_spaces_and_percent() {
        let mut e = entry(1);
        e.addr.traddr = FixedStr::new("a b%c").unwrap();
        let text = render([e.clone()].iter());
        assert!(text.contains("traddr=a%20b%25c "));
        assert_eq!(parse(&text).unwrap().0, vec![e]);
    }

    #[test]
    fn non_ascii_round_trips() {
        // Found by the state_file fuzz target: each byte of 'é' came back as its own char.
        let mut e = entry(1);
        e.addr.traddr = FixedStr::new("é").unwrap();
        let text = render([e.clone()].iter());
        assert!(text.contains("traddr=%C3%A9 "), "{text}");
        assert_eq!(parse(&text).unwrap(), (vec![e], vec![]));
    }

    #[test]
    fn refuses_bad_headers_and_truncation() {
        let good = render([entry(0), entry(1)].iter());
        assert_eq!(parse(""), Err(StateError::Empty));
        assert_eq!(parse("garbage\n\x01\x02"), Err(StateError::BadMagic));
        assert_eq!(
            parse("nvme-monitor-state 2\nend 0\n"),
            Err(StateError::Version("2".into()))
        );
        // Cut anywhere before the trailer is complete: refused as a whole.
        let cut_at = good.find("end").unwrap();
        for cut in [cut_at, good.len() / 2, good.len() - 5] {
            assert_eq!(
                parse(&good[..cut]),
                Err(StateError::Truncated),
                "cut at {cut}"
            );
        }
        // A dc line removed by hand: the count no longer matches.
        let edited = good.replacen(
            &good[good.find("dc nvme1").unwrap()..good.find("end").unwrap()],
            "",
            1,
        );
        assert_eq!(parse(&edited), Err(StateError::Truncated));
        assert_eq!(
            parse(&format!("{good}junk after end\n")),
            Err(StateError::Truncated)
        );
    }

    #[test]
    fn bad_line_is_skipped_with_a_warning() {
        let text = format!(
            "{MAGIC} 1\ndc nvme0 transport=warp traddr=x\n{}end 2\n",
            render([entry(4)].iter()).lines().nth(1).unwrap().to_owned() + "\n"
        );
        let (entries, warnings) = parse(&text).unwrap();
        assert_eq!(entries, vec![entry(4)]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("unknown transport 'warp'"),
            "{warnings:?}"
        );
    }

    #[test]
    fn atomic_write_and_read() {
        let dir =
            std::env::temp_dir().join(format!("nvme-monitor-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(read(&dir).unwrap(), None);
        let text = render([entry(2)].iter());
        write(&dir, &text).unwrap();
        assert_eq!(read(&dir).unwrap().as_deref(), Some(text.as_str()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.join(".state.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
