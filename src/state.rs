//! The handoff state file: the discovery controllers we own, for the next instance to adopt.
//!
//! The initramfs instance runs with `--keep` and leaves its discovery controllers up; the instance
//! started after switch-root reads this file and adopts each controller that sysfs still shows
//! unchanged. The file is rewritten atomically (temporary file + rename) whenever the set changes, so
//! a SIGKILL at any point leaves either the old or the new complete file. It lives in the state
//! directory and is opened as every file there is (see [`crate::statedir`]): a symlink or FIFO in its
//! place is refused, never followed or blocked on.
//!
//! Format (line based, UTF-8, version 2):
//! ```text
//! nvme-monitor-state 2
//! dc nvme0 transport=tcp traddr=192.168.1.3 trsvcid=8009 host_traddr= host_iface= hostnqn=nqn.2014-08.org.nvmexpress:uuid:0f01fb42 subsysnqn=nqn.2014-08.org.nvmexpress.discovery cntlid=1 ino=4294969412 origin=config
//! end 1
//! ```
//! Values are percent-escaped (`%`, space, control bytes, non-ASCII). `end N` closes the file and
//! counts the `dc` lines, so a truncated or hand-shortened file is detected. Each field appears once.
//!
//! - `hostnqn`: the host NQN the controller was connected with (the effective one).
//! - `cntlid`: the controller ID at the time of writing; a reset or reconnect may change it.
//! - `ino`: the inode number of the controller's sysfs directory (`/sys/class/nvme/nvmeN` resolved),
//!   0 when unknown. That directory is a kernfs node, whose id kernfs allocates cyclically
//!   (`idr_alloc_cyclic`) with a generation counter in the high 32 bits, and on 64-bit `ino_t` the
//!   inode number is that whole id: a new controller that gets the same nvmeN number gets a new
//!   inode number, within a boot. It identifies the controller where a bare `nvmeN` and a cntlid
//!   do not.
//!
//! Version 1 is the same without `ino`; it is still read, with `ino` 0 (unknown).
//!
//! # References
//! - fs/kernfs/dir.c `kernfs_new_node`, include/linux/kernfs.h `kernfs_id_ino`

use std::path::Path;

use crate::addr::{FixedStr, Nqn, Transport, TransportAddr};
use crate::error::{Error, Result};
use crate::statedir::StateDir;
use crate::table::Origin;

pub const MAGIC: &str = "nvme-monitor-state";
/// The version we write.
pub const VERSION: u32 = 2;
/// The oldest version we still read.
pub const MIN_VERSION: u32 = 1;
pub const FILE_NAME: &str = "state";

/// One discovery controller we own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// N of /dev/nvmeN.
    pub instance: u32,
    pub addr: TransportAddr,
    pub cntlid: u16,
    /// Inode number of the controller's sysfs directory, not reused within a boot; 0: unknown.
    pub ino: u64,
    pub subsysnqn: Nqn,
    pub origin: Origin,
    /// A `creating` line: written just before the connect of a discovery controller at `addr`,
    /// so a SIGKILL between the kernel creating it and our next write cannot leak it. `instance`
    /// and `cntlid` mean nothing then, and `ino` is the highest controller identity sysfs showed
    /// before the connect: kernfs ids only grow within a boot, so the controller is the first
    /// discovery controller at `addr` with a greater one.
    pub creating: bool,
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
                write!(
                    f,
                    "unsupported version '{v}' (this reads versions {MIN_VERSION} to {VERSION})"
                )
            }
            StateError::Truncated => {
                f.write_str("no valid 'end' line: file is truncated or was edited")
            }
        }
    }
}

/// Percent-escape `s` onto `out` (`%`, space, control bytes, non-ASCII): one word, reversible.
/// Shared with [`crate::status`], whose file uses the same value encoding.
pub(crate) fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        // Non-ASCII bytes too: the file is read back byte for byte, not char for char.
        if b == b'%' || b <= b' ' || b >= 0x7f {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
}

/// The inverse of [`escape`]; `None` for a bad `%XX` or bytes that are not UTF-8.
pub(crate) fn unescape(s: &str) -> Option<String> {
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
        if e.creating {
            out.push_str(&format!("creating nvme{}", e.instance));
        } else {
            n += 1;
            out.push_str(&format!("dc nvme{}", e.instance));
        }
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
            " cntlid={} ino={} origin={}\n",
            e.cntlid,
            e.ino,
            e.origin.name()
        ));
    }
    out.push_str(&format!("end {n}\n"));
    out
}

/// A decimal number as we write it: digits only (no sign, no space), no overflow.
pub(crate) fn number<T: std::str::FromStr>(k: &str, v: &str) -> std::result::Result<T, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "bad {k} '{}'",
            v.chars().take(24).collect::<String>()
        ));
    }
    v.parse().map_err(|_| {
        format!(
            "bad {k} '{}': out of range",
            v.chars().take(24).collect::<String>()
        )
    })
}

/// Parse one `dc` line (without the leading `dc `) of a file of `version`.
fn parse_dc(line: &str, version: u32) -> std::result::Result<StateEntry, String> {
    let mut words = line.split(' ');
    let name = words.next().unwrap_or("");
    let instance: u32 = name
        .strip_prefix("nvme")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad device name '{name}'"))?;
    let (mut transport, mut cntlid, mut ino, mut origin) = (None, None, None, None);
    let mut seen: Vec<&str> = Vec::with_capacity(12);
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
        // Two values for one field: which one would be meant? Neither.
        if seen.contains(&k) {
            return Err(format!("field {k} appears twice"));
        }
        seen.push(k);
        let v = unescape(v).ok_or_else(|| format!("bad escape in {k}"))?;
        match k {
            "transport" => {
                transport = Some(
                    Transport::from_name(&v).ok_or_else(|| format!("unknown transport '{v}'"))?,
                )
            }
            "cntlid" => cntlid = Some(number::<u16>(k, &v)?),
            "ino" if version >= 2 => ino = Some(number::<u64>(k, &v)?),
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
    let ino = match version {
        1 => 0,
        _ => ino.ok_or("missing ino")?,
    };
    Ok(StateEntry {
        instance,
        addr,
        cntlid: cntlid.ok_or("missing cntlid")?,
        ino,
        subsysnqn,
        origin: origin.ok_or("missing origin")?,
        creating: false,
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
    let version = match version {
        "1" => 1,
        "2" => 2,
        _ => return Err(StateError::Version(version.chars().take(20).collect())),
    };
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
            match parse_dc(rest, version) {
                Ok(e) => entries.push(e),
                Err(why) => warnings.push(format!("line {lineno}: {why}")),
            }
        } else if let Some(rest) = line.strip_prefix("creating ") {
            // Not counted by `end`: a version-2 reader without it only warns.
            match parse_dc(rest, version) {
                Ok(e) => entries.push(StateEntry {
                    creating: true,
                    ..e
                }),
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

/// Replace `dir/state` atomically: a new temporary file (mode 0600, `O_EXCL`), fsync, rename over
/// the old one, fsync the directory. The directory is created 0700 if missing and must be safe (see
/// [`crate::statedir`]); a symlink or FIFO at `dir/state` is refused and left in place.
pub fn write(dir: &Path, text: &str) -> Result<()> {
    StateDir::create(dir)?.replace(FILE_NAME, text.as_bytes(), 0o600)
}

/// The state file's text, `None` when there is none (or no state directory). A symlink, FIFO or
/// other non-regular file in its place, or an unsafe directory, is an error naming what it is.
pub fn read(dir: &Path) -> Result<Option<String>> {
    let Some(sd) = StateDir::open(dir)? else {
        return Ok(None);
    };
    let Some(bytes) = sd.read(FILE_NAME)? else {
        return Ok(None);
    };
    String::from_utf8(bytes).map(Some).map_err(|_| {
        Error::invalid(
            format!("read {}", dir.join(FILE_NAME).display()),
            "not UTF-8",
        )
    })
}

/// Remove `dir/state` (at exit, once nothing is ours any more): `Ok(false)` when there was none.
/// Only a regular file is removed: a symlink or FIFO in its place is not ours to delete.
pub fn remove(dir: &Path) -> Result<bool> {
    match StateDir::open(dir)? {
        Some(sd) => sd.remove(FILE_NAME),
        None => Ok(false),
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
            ino: (5 << 32) | 2117, // generation 5 in the high 32 bits, as kernfs allocates
            subsysnqn: Nqn::new("nqn.2014-08.org.nvmexpress.discovery").unwrap(),
            origin: Origin::Config,
            creating: false,
        }
    }

    #[test]
    fn round_trip() {
        let es = vec![entry(0), entry(3)];
        let text = render(es.iter());
        assert!(text.starts_with("nvme-monitor-state 2\ndc nvme0 transport=tcp traddr=127.0.0.1 "));
        assert!(
            text.contains(" cntlid=7 ino=21474838597 origin=config\n"),
            "{text}"
        );
        assert!(text.ends_with("end 2\n"));
        let (back, warnings) = parse(&text).unwrap();
        assert_eq!(back, es);
        assert!(warnings.is_empty());
    }

    #[test]
    fn empty_set_round_trips() {
        let text = render([].iter());
        assert_eq!(text, "nvme-monitor-state 2\nend 0\n");
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
            parse("nvme-monitor-state 3\nend 0\n"),
            Err(StateError::Version("3".into()))
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
            "{MAGIC} {VERSION}\ndc nvme0 transport=warp traddr=x\n{}end 2\n",
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

    /// A version-1 line as version 1 wrote it: no ino.
    const V1_LINE: &str = "dc nvme3 transport=tcp traddr=127.0.0.1 trsvcid=8009 host_traddr= host_iface= hostnqn=nqn.2014-08.org.nvmexpress:uuid:0f01fb42 subsysnqn=nqn.2014-08.org.nvmexpress.discovery cntlid=7 origin=config";

    #[test]
    fn version_1_is_read_with_ino_unknown() {
        let (entries, warnings) = parse(&format!("{MAGIC} 1\n{V1_LINE}\nend 1\n")).unwrap();
        let mut want = entry(3);
        want.ino = 0;
        assert_eq!(entries, vec![want.clone()]);
        assert!(warnings.is_empty(), "{warnings:?}");
        // Written back, it is version 2 with ino=0 and reads the same.
        let text = render(entries.iter());
        assert!(text.starts_with("nvme-monitor-state 2\n") && text.contains(" ino=0 "));
        assert_eq!(parse(&text).unwrap(), (vec![want], vec![]));
        // Version 1 had no ino: a line with one was not written by us.
        let with_ino = V1_LINE.replace(" origin=", " ino=5 origin=");
        let (entries, warnings) = parse(&format!("{MAGIC} 1\n{with_ino}\nend 1\n")).unwrap();
        assert!(entries.is_empty());
        assert!(warnings[0].contains("unknown field 'ino'"), "{warnings:?}");
    }

    #[test]
    fn version_2_requires_a_sane_ino() {
        let good = render([entry(3)].iter());
        let line = good.lines().nth(1).unwrap();
        let with = |ino: &str| {
            let l = line.replace(" ino=21474838597", ino);
            parse(&format!("{MAGIC} 2\n{l}\nend 1\n")).unwrap()
        };
        let (e, w) = with(" ino=18446744073709551615");
        assert_eq!((e[0].ino, w.len()), (u64::MAX, 0));
        let (e, w) = with(" ino=0");
        assert_eq!((e[0].ino, w.len()), (0, 0));
        for (bad, why) in [
            ("", "missing ino"),
            (" ino=", "bad ino ''"),
            (" ino=-1", "bad ino '-1'"),
            (" ino=+1", "bad ino '+1'"),
            (" ino=0x10", "bad ino '0x10'"),
            (" ino=1%20", "bad ino '1 '"),
            (" ino=%31", ""), // an escaped digit is a digit: accepted below
            (" ino=18446744073709551616", "out of range"),
            (" ino=99999999999999999999999999999999", "out of range"),
            (" ino=1 ino=2", "field ino appears twice"),
        ] {
            let (entries, warnings) = with(bad);
            if why.is_empty() {
                assert_eq!(entries[0].ino, 1);
                continue;
            }
            assert!(entries.is_empty(), "{bad}: {entries:?}");
            assert_eq!(warnings.len(), 1, "{bad}");
            assert!(
                warnings[0].starts_with("line 2: ") && warnings[0].contains(why),
                "{bad}: {warnings:?}"
            );
        }
        // A bad cntlid the same way: digits only.
        let l = line.replace("cntlid=7", "cntlid=+7");
        let (entries, warnings) = parse(&format!("{MAGIC} 2\n{l}\nend 1\n")).unwrap();
        assert!(entries.is_empty() && warnings[0].contains("bad cntlid '+7'"));
    }

    fn temp_state_dir(tag: &str) -> std::path::PathBuf {
        use std::os::unix::fs::DirBuilderExt;
        let d = std::env::temp_dir().join(format!("nvme-monitor-st-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
        d
    }

    #[test]
    fn symlinked_state_file_is_neither_followed_nor_replaced() {
        let d = temp_state_dir("link");
        let outside = d.join("x");
        std::fs::write(&outside, render([entry(1)].iter())).unwrap();
        std::os::unix::fs::symlink(&outside, d.join(FILE_NAME)).unwrap();
        let e = read(&d).unwrap_err().to_string();
        assert!(
            e.ends_with("state: is a symlink: refusing to follow it"),
            "{e}"
        );
        let e = write(&d, &render([entry(2)].iter()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a symlink, not a regular file"), "{e}");
        assert!(remove(&d).is_err());
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            render([entry(1)].iter())
        );
        assert!(
            std::fs::symlink_metadata(d.join(FILE_NAME))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn fifo_state_file_is_refused_without_blocking() {
        let d = temp_state_dir("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join(FILE_NAME),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read(&d).unwrap_err().to_string();
        assert!(
            e.ends_with("state: is a FIFO, not a regular file: refusing it"),
            "{e}"
        );
        assert!(write(&d, "x").is_err());
        assert!(remove(&d).is_err());
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(d.join(FILE_NAME))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unsafe_state_dir_is_refused_for_reading_and_writing() {
        use std::os::unix::fs::PermissionsExt;
        let d = temp_state_dir("dir");
        write(&d, &render([entry(1)].iter())).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        for e in [
            read(&d).unwrap_err(),
            write(&d, "x").unwrap_err(),
            remove(&d).unwrap_err(),
        ] {
            assert!(
                e.to_string()
                    .contains("writable by group or others (mode 0777)"),
                "{e}"
            );
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = d.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(read(&link).unwrap_err().to_string().contains("symlink"));
        assert!(write(&link, "x").is_err());
        assert_eq!(read(&d).unwrap(), Some(render([entry(1)].iter())));
        std::fs::remove_file(&link).unwrap();
        assert!(remove(&d).unwrap());
        assert!(!remove(&d).unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_creating_line_round_trips_and_is_not_counted() {
        let mut intent = entry(0);
        intent.creating = true;
        intent.ino = 4242;
        let text = render([entry(3), intent.clone()].iter());
        assert!(
            text.contains("\ncreating nvme0 ") && text.ends_with("end 1\n"),
            "{text}"
        );
        let (entries, warnings) = parse(&text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(entries, vec![entry(3), intent]);
    }
}
