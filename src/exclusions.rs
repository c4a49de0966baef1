//! nvme-cli 3's host-wide exclusion list: controllers no orchestrator may connect.
//!
//! `/etc/nvme/exclusions.conf` and `/etc/nvme/exclusions.conf.d/*.conf` (sorted by name), INI
//! ([`crate::ini`]). Entries are read only inside `[exclusions]`:
//!
//! ```text
//! [exclusions]
//! exclusion = transport=tcp;traddr=192.168.1.20;trsvcid=4420
//! exclusion = nqn=nqn.2014-08.com.example:array1;hostnqn=nqn.2014-08.org.nvmexpress:uuid:...
//! ```
//!
//! with keys exactly `transport traddr trsvcid nqn host-traddr host-iface hostnqn hostid`. A
//! controller is excluded when it matches any entry of any file. Only the fields an entry names are
//! compared, and a field the controller lacks (empty, `none`) never matches. Addresses compare by
//! meaning ([`crate::sysfs::same_addr`]: IPv6 spellings and IPv4-mapped forms are equal, FC and loop
//! ignore case), tcp and rdma ports as numbers, host IDs ignoring case, transport names too. The
//! rest (NQNs, interface names) compare exactly.
//!
//! An entry that cannot match is reported once (`FILE:LINE: ...`) and left out: an unknown key, an
//! empty entry, a key given twice, a key without a value, a value of `none` (a field the controller
//! lacks never matches), an unknown transport. An unreadable file excludes nothing: a broken
//! exclusion list must not stop a host from reaching its storage (fail open).
//!
//! [`parse`] and [`ExclusionList`] are pure; [`ExclusionFiles`] is the shell half that stats and
//! reads the files, and re-reads them only when one changed.
//!
//! # References
//! - nvme-cli libnvme/design/EXCLUSIONS.md, Documentation/nvme-exclusion-*.txt

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::addr::{Transport, unset_to_empty};
use crate::ini::{self, Item};

/// How a field of an entry is compared with the controller's.
#[derive(Clone, Copy)]
enum Compare {
    /// By meaning, for the candidate's transport.
    Addr,
    /// tcp and rdma ports as numbers (`04420` is `4420`), others exactly.
    Port,
    Exact,
    IgnoreCase,
}

/// The entry keys after `transport`, in [`Candidate`] order.
const FIELDS: [(&str, Compare); 7] = [
    ("traddr", Compare::Addr),
    ("trsvcid", Compare::Port),
    ("nqn", Compare::Exact),
    ("host-traddr", Compare::Addr),
    ("host-iface", Compare::Exact),
    ("hostnqn", Compare::Exact),
    ("hostid", Compare::IgnoreCase),
];

impl Compare {
    fn same(self, t: Transport, want: &str, have: &str) -> bool {
        match self {
            Compare::Addr => crate::sysfs::same_addr(t, want, have),
            Compare::Port => {
                want == have
                    || matches!(t, Transport::Tcp | Transport::Rdma)
                        && matches!((port(want), port(have)), (Some(a), Some(b)) if a == b)
            }
            Compare::Exact => want == have,
            Compare::IgnoreCase => want.eq_ignore_ascii_case(have),
        }
    }
}

fn port(s: &str) -> Option<u16> {
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

/// One `exclusion =` entry that can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// `FILE:LINE` of the entry, for "excluded by ..." messages.
    pub source: String,
    transport: Option<Transport>,
    /// By [`FIELDS`] index.
    values: [Option<String>; 7],
}

impl Exclusion {
    /// The fields this entry names, `(key, value)` in the documented key order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let transport = self.transport.map(|t| ("transport", t.name()));
        let rest = FIELDS
            .iter()
            .zip(&self.values)
            .filter_map(|((key, _), v)| Some((*key, v.as_deref()?)));
        transport.into_iter().chain(rest)
    }

    fn matches(&self, c: &Candidate) -> bool {
        if self.transport.is_some_and(|t| t != c.transport) {
            return false;
        }
        let have = [
            c.traddr,
            c.trsvcid,
            c.nqn,
            c.host_traddr,
            c.host_iface,
            c.hostnqn,
            c.hostid,
        ];
        FIELDS
            .iter()
            .zip(&self.values)
            .zip(have)
            .all(|(((_, compare), want), have)| match want {
                None => true,
                Some(want) => {
                    let have = unset_to_empty(have);
                    !have.is_empty() && compare.same(c.transport, want, have)
                }
            })
    }
}

/// The entry as it would be written: `transport=tcp;traddr=...`.
impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.fields().enumerate() {
            let sep = if i == 0 { "" } else { ";" };
            write!(f, "{sep}{key}={value}")?;
        }
        Ok(())
    }
}

/// A controller about to be connected. Empty (or `none`) fields are ones it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub transport: Transport,
    pub traddr: &'a str,
    pub trsvcid: &'a str,
    /// The subsystem NQN (the well-known discovery NQN for a discovery controller).
    pub nqn: &'a str,
    pub host_traddr: &'a str,
    pub host_iface: &'a str,
    /// The host NQN it would be connected with, after defaults.
    pub hostnqn: &'a str,
    pub hostid: &'a str,
}

/// Parse one file: its entries that can match, and a warning for each line that is left out.
pub fn parse(text: &str, file: &str) -> (Vec<Exclusion>, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut inside = false;
    for token in ini::tokens(text, file) {
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                warnings.push(e.to_string());
                continue;
            }
        };
        let at = token.line;
        match token.item {
            Item::Section(name) => inside = name == "exclusions",
            Item::KeyValue { key, value } => match (inside, key, value) {
                (true, "exclusion", Some(value)) => match parse_entry(value) {
                    Ok((transport, values)) => entries.push(Exclusion {
                        source: format!("{file}:{at}"),
                        transport,
                        values,
                    }),
                    Err(why) => {
                        warnings.push(format!("{file}:{at}: {why}; this exclusion never matches"))
                    }
                },
                (true, "exclusion", None) => warnings.push(format!(
                    "{file}:{at}: empty exclusion; this exclusion never matches"
                )),
                (true, key, _) => warnings.push(format!(
                    "{file}:{at}: unknown key '{}' in [exclusions] ignored",
                    key.escape_debug()
                )),
                (false, "exclusion", _) => warnings.push(format!(
                    "{file}:{at}: exclusion outside [exclusions] ignored"
                )),
                // Other sections belong to someone else.
                (false, _, _) => {}
            },
        }
    }
    (entries, warnings)
}

type Fields = (Option<Transport>, [Option<String>; 7]);

/// `key=value;key=value...`, parts trimmed, empty parts (a trailing `;`) skipped.
fn parse_entry(value: &str) -> Result<Fields, String> {
    let mut transport = None;
    let mut values: [Option<String>; 7] = Default::default();
    let mut any = false;
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, v) = part
            .split_once('=')
            .ok_or_else(|| format!("'{}' is not key=value", part.escape_debug()))?;
        let (key, v) = (key.trim(), v.trim());
        let key_ = key.escape_debug();
        if v.is_empty() {
            return Err(format!("{key_} has no value"));
        }
        if unset_to_empty(v).is_empty() {
            return Err(format!(
                "{key_}={v} names a field the controller lacks, which never matches"
            ));
        }
        // No field holds blanks (the kernel's option parser would not take them); they are
        // most likely a comment written after the entry, which the format does not have.
        if v.contains(char::is_whitespace) {
            return Err(format!(
                "{key_}='{}' has a blank in it (comments go on a line of their own)",
                v.escape_debug()
            ));
        }
        let twice = || format!("{key_} is given twice");
        if key == "transport" {
            let t = Transport::from_name(&v.to_ascii_lowercase()).ok_or_else(|| {
                format!(
                    "unknown transport '{}' (expected rdma, fc, tcp or loop)",
                    v.escape_debug()
                )
            })?;
            if transport.replace(t).is_some() {
                return Err(twice());
            }
        } else {
            let i = FIELDS
                .iter()
                .position(|(name, _)| *name == key)
                .ok_or_else(|| format!("unknown key '{key_}'"))?;
            if values[i].replace(v.to_owned()).is_some() {
                return Err(twice());
            }
        }
        any = true;
    }
    if !any {
        return Err("empty exclusion".into());
    }
    Ok((transport, values))
}

/// The entries of all files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExclusionList {
    entries: Vec<Exclusion>,
}

impl ExclusionList {
    /// Parse `(name, text)` pairs, in order; the warnings of all files.
    pub fn from_files(files: &[(String, String)]) -> (ExclusionList, Vec<String>) {
        let mut list = ExclusionList::default();
        let mut warnings = Vec::new();
        for (name, text) in files {
            let (entries, w) = parse(text, name);
            list.entries.extend(entries);
            warnings.extend(w);
        }
        (list, warnings)
    }

    /// The first entry that excludes `c`, if any.
    pub fn excluded_by(&self, c: &Candidate) -> Option<&Exclusion> {
        self.entries.iter().find(|e| e.matches(c))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Exclusion> {
        self.entries.iter()
    }
}

/// What one stat said about a file, or why the drop-in directory could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stamp {
    File {
        path: PathBuf,
        /// `(size, mtime_ns, ctime_ns, inode)`, or the errno of a failed stat.
        meta: Result<(u64, i128, i128, u64), i32>,
    },
    Unlisted {
        dir: PathBuf,
        errno: i32,
    },
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The files on disk, read again only when they change.
#[derive(Debug)]
pub struct ExclusionFiles {
    main: PathBuf,
    dir: PathBuf,
    /// What the last read saw; `None` before the first.
    seen: Option<Vec<Stamp>>,
    list: ExclusionList,
}

impl ExclusionFiles {
    /// The files under `etc_nvme` (normally /etc/nvme); nothing is read until [`Self::current`].
    pub fn new(etc_nvme: &Path) -> Self {
        let main = etc_nvme.join("exclusions.conf");
        ExclusionFiles {
            dir: ini::drop_in_dir(&main),
            main,
            seen: None,
            list: ExclusionList::default(),
        }
    }

    /// The exclusions as last read by [`Self::current`] (no file access).
    pub fn list(&self) -> &ExclusionList {
        &self.list
    }

    /// The exclusions as the files say now. A few stats when nothing changed, so it can be called
    /// before every connect; problems are logged once per change.
    pub fn current(&mut self) -> &ExclusionList {
        if let Some(warnings) = self.refresh() {
            for w in &warnings {
                warn!("{w}");
            }
            debug!(
                "exclusions: {} entries from {} and {}",
                self.list.len(),
                self.main.display(),
                self.dir.display()
            );
        }
        &self.list
    }

    /// Stat everything; if anything differs from the last read, read again. The warnings of the
    /// new read, or `None` when nothing changed.
    fn refresh(&mut self) -> Option<Vec<String>> {
        // Stat before reading: a file changed after its stat is seen as changed on the next call.
        let stamps = self.scan();
        if self.seen.as_ref() == Some(&stamps) {
            return None;
        }
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        for stamp in &stamps {
            match stamp {
                Stamp::File { path, .. } => match ini::read_file(path) {
                    Ok(Some(text)) => files.push((path.display().to_string(), text)),
                    Ok(None) => {} // removed since the stat; the next call sees it gone
                    Err(e) => warnings.push(format!("{e}; nothing in it is excluded")),
                },
                Stamp::Unlisted { dir, errno } => {
                    let e = crate::error::Error::os(
                        format!("list {}", dir.display()),
                        rustix::io::Errno::from_raw_os_error(*errno),
                    );
                    warnings.push(format!("{e}; nothing in it is excluded"));
                }
            }
        }
        let (list, w) = ExclusionList::from_files(&files);
        warnings.extend(w);
        self.list = list;
        self.seen = Some(stamps);
        Some(warnings)
    }

    fn scan(&self) -> Vec<Stamp> {
        let mut stamps = Vec::new();
        let mut stat = |path: PathBuf| {
            let meta = match std::fs::metadata(&path) {
                Ok(m) => Ok((
                    m.size(),
                    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                    i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
                    m.ino(),
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) => Err(errno_of(&e)),
            };
            stamps.push(Stamp::File { path, meta });
        };
        stat(self.main.clone());
        match ini::drop_ins(&self.dir) {
            Ok(paths) => paths.into_iter().for_each(stat),
            Err(e) => stamps.push(Stamp::Unlisted {
                dir: self.dir.clone(),
                errno: errno_of(&e),
            }),
        }
        stamps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = include_str!("../tests/data/exclusions/exclusions.conf");
    const DROP_IN: &str =
        include_str!("../tests/data/exclusions/exclusions.conf.d/50-maintenance.conf");
    const BAD: &str = include_str!("../tests/data/exclusions/bad.conf");

    fn tcp<'a>(traddr: &'a str, trsvcid: &'a str, nqn: &'a str) -> Candidate<'a> {
        Candidate {
            transport: Transport::Tcp,
            traddr,
            trsvcid,
            nqn,
            host_traddr: "",
            host_iface: "",
            hostnqn: "nqn.2014-08.org.nvmexpress:uuid:5f8ea9b4-1d42-4b5c-9b0e-3a4d6c7e8f90",
            hostid: "5f8ea9b4-1d42-4b5c-9b0e-3a4d6c7e8f90",
        }
    }

    fn list(text: &str) -> ExclusionList {
        let (list, warnings) = ExclusionList::from_files(&[("f".into(), text.into())]);
        assert_eq!(warnings, Vec::<String>::new());
        list
    }

    fn by<'a>(l: &'a ExclusionList, c: &Candidate) -> Option<&'a str> {
        l.excluded_by(c).map(|e| e.source.as_str())
    }

    #[test]
    fn example_files() {
        let files = [
            ("exclusions.conf".to_owned(), MAIN.to_owned()),
            (
                "exclusions.conf.d/50-maintenance.conf".to_owned(),
                DROP_IN.to_owned(),
            ),
        ];
        let (l, warnings) = ExclusionList::from_files(&files);
        assert_eq!(warnings, Vec::<String>::new());
        let rendered: Vec<String> = l.iter().map(|e| format!("{}: {e}", e.source)).collect();
        assert_eq!(
            rendered,
            [
                "exclusions.conf:9: transport=tcp;traddr=192.168.1.20;trsvcid=4420",
                "exclusions.conf:12: nqn=nqn.2014-08.com.example:array1",
                "exclusions.conf:15: transport=fc;traddr=nn-0x200400A098D85236:pn-0x201400A098D85236",
                "exclusions.conf:18: traddr=fd00::20;host-iface=eth1",
                "exclusions.conf.d/50-maintenance.conf:6: \
                 transport=tcp;traddr=10.0.0.9;nqn=nqn.2014-08.com.example:array2",
            ]
        );
        let array = "nqn.2014-08.com.example:array2";
        assert_eq!(
            by(&l, &tcp("10.0.0.9", "4420", array)),
            Some("exclusions.conf.d/50-maintenance.conf:6")
        );
        assert_eq!(by(&l, &tcp("10.0.0.9", "4420", "nqn.other")), None);
    }

    #[test]
    fn only_named_fields_are_compared() {
        let l = list("[exclusions]\nexclusion = traddr=192.168.1.20\n");
        assert_eq!(by(&l, &tcp("192.168.1.20", "4420", "nqn.a")), Some("f:2"));
        assert_eq!(by(&l, &tcp("192.168.1.20", "8009", "nqn.b")), Some("f:2"));
        let rdma = Candidate {
            transport: Transport::Rdma,
            ..tcp("192.168.1.20", "4420", "nqn.a")
        };
        assert_eq!(by(&l, &rdma), Some("f:2"));
        assert_eq!(by(&l, &tcp("192.168.1.21", "4420", "nqn.a")), None);
    }

    #[test]
    fn every_field_must_match() {
        let l = list(
            "[exclusions]\nexclusion = transport=tcp;traddr=1.2.3.4;trsvcid=4420;nqn=nqn.a;\
             host-traddr=1.2.3.1;host-iface=eth0;hostnqn=nqn.h;hostid=ABCDEF00-0000-0000-0000-000000000001\n",
        );
        let full = Candidate {
            transport: Transport::Tcp,
            traddr: "1.2.3.4",
            trsvcid: "4420",
            nqn: "nqn.a",
            host_traddr: "1.2.3.1",
            host_iface: "eth0",
            hostnqn: "nqn.h",
            hostid: "abcdef00-0000-0000-0000-000000000001",
        };
        assert_eq!(by(&l, &full), Some("f:2"));
        let each: [Candidate; 8] = [
            Candidate {
                transport: Transport::Rdma,
                ..full
            },
            Candidate {
                traddr: "1.2.3.5",
                ..full
            },
            Candidate {
                trsvcid: "4421",
                ..full
            },
            Candidate {
                nqn: "nqn.b",
                ..full
            },
            Candidate {
                host_traddr: "1.2.3.2",
                ..full
            },
            Candidate {
                host_iface: "eth1",
                ..full
            },
            Candidate {
                hostnqn: "nqn.i",
                ..full
            },
            Candidate {
                hostid: "abcdef00-0000-0000-0000-000000000002",
                ..full
            },
        ];
        for (i, c) in each.iter().enumerate() {
            assert_eq!(by(&l, c), None, "field {i}");
        }
    }

    #[test]
    fn a_field_the_controller_lacks_never_matches() {
        let l = list("[exclusions]\nexclusion = host-iface=eth0\n");
        let c = tcp("1.2.3.4", "4420", "nqn.a");
        assert_eq!(by(&l, &c), None);
        let none = Candidate {
            host_iface: "none",
            ..c
        };
        assert_eq!(by(&l, &none), None);
        let set = Candidate {
            host_iface: "eth0",
            ..c
        };
        assert_eq!(by(&l, &set), Some("f:2"));
    }

    #[test]
    fn addresses_compare_by_meaning() {
        let l = list(
            "[exclusions]\nexclusion = traddr=FD00:0:0::20;trsvcid=04420\n\
             exclusion = transport=FC;traddr=nn-0x200400A098D85236:pn-0x201400A098D85236\n\
             exclusion = traddr=::ffff:10.1.1.1\n",
        );
        assert_eq!(by(&l, &tcp("fd00::20", "4420", "nqn.a")), Some("f:2"));
        assert_eq!(by(&l, &tcp("fd00::21", "4420", "nqn.a")), None);
        assert_eq!(by(&l, &tcp("10.1.1.1", "4420", "nqn.a")), Some("f:4"));
        let fc = Candidate {
            transport: Transport::Fc,
            traddr: "nn-0x200400a098d85236:pn-0x201400a098d85236",
            trsvcid: "none",
            ..tcp("", "", "nqn.a")
        };
        assert_eq!(by(&l, &fc), Some("f:3"));
        // An FC address is no IP address: it does not match a tcp controller of the same spelling.
        assert_eq!(
            by(
                &l,
                &Candidate {
                    transport: Transport::Tcp,
                    ..fc
                }
            ),
            None
        );
    }

    #[test]
    fn entries_that_cannot_match_are_reported_once_and_left_out() {
        let (entries, warnings) = parse(BAD, "bad.conf");
        let sources: Vec<&str> = entries.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(sources, ["bad.conf:26"]);
        let f = "bad.conf";
        let never = "; this exclusion never matches";
        assert_eq!(
            warnings,
            [
                format!("{f}:4: exclusion outside [exclusions] ignored"),
                format!("{f}:8: unknown key 'port'{never}"),
                format!("{f}:10: empty exclusion{never}"),
                format!("{f}:11: empty exclusion{never}"),
                format!("{f}:13: traddr is given twice{never}"),
                format!("{f}:15: trsvcid has no value{never}"),
                format!(
                    "{f}:17: host-iface=none names a field the controller lacks, which never matches{never}"
                ),
                format!("{f}:19: unknown transport 'udp' (expected rdma, fc, tcp or loop){never}"),
                format!("{f}:21: 'tcp' is not key=value{never}"),
                format!("{f}:22: unknown key 'TRADDR'{never}"),
                format!("{f}:23: unknown key 'exclude' in [exclusions] ignored"),
                format!("{f}:24: a section header is '[name]' alone on its line"),
                format!(
                    "{f}:28: traddr='10.0.0.1 # the old array' has a blank in it \
                     (comments go on a line of their own){never}"
                ),
            ]
        );
    }

    #[test]
    fn fields_round_trip_through_display() {
        let (entries, _) = parse(MAIN, "m");
        for e in &entries {
            let (again, w) = parse(&format!("[exclusions]\nexclusion = {e}\n"), "m");
            assert!(w.is_empty());
            assert_eq!(
                again[0].fields().collect::<Vec<_>>(),
                e.fields().collect::<Vec<_>>()
            );
        }
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("nvme-monitor-excl-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_are_read_again_only_when_they_change() {
        let etc = TempDir::new("reread");
        let mut files = ExclusionFiles::new(&etc.0);
        let a = tcp("10.0.0.1", "4420", "nqn.a");
        let b = tcp("10.0.0.2", "4420", "nqn.b");
        assert_eq!(files.refresh(), Some(vec![]));
        assert!(files.current().is_empty());
        assert_eq!(files.refresh(), None, "nothing there, nothing changed");

        let main = etc.0.join("exclusions.conf");
        std::fs::write(&main, "[exclusions]\nexclusion = traddr=10.0.0.1\n").unwrap();
        assert_eq!(files.refresh(), Some(vec![]));
        assert!(files.current().excluded_by(&a).is_some());
        assert_eq!(files.refresh(), None);

        // A line added is seen.
        std::fs::write(
            &main,
            "[exclusions]\nexclusion = traddr=10.0.0.1\nexclusion = nqn=nqn.b\n",
        )
        .unwrap();
        assert!(files.current().excluded_by(&b).is_some());

        // A drop-in, then the main file replaced by rename with one of the same size.
        let dir = etc.0.join("exclusions.conf.d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("10-x.conf"),
            "[exclusions]\nexclusion = trsvcid=8009\n",
        )
        .unwrap();
        let c = tcp("10.0.0.3", "8009", "nqn.c");
        assert_eq!(
            files.current().excluded_by(&c).map(|e| e.source.clone()),
            Some(format!("{}:2", dir.join("10-x.conf").display()))
        );
        let tmp = etc.0.join("exclusions.conf.tmp");
        std::fs::write(
            &tmp,
            "[exclusions]\nexclusion = traddr=10.0.0.7\nexclusion = nqn=nqn.b\n",
        )
        .unwrap();
        std::fs::rename(&tmp, &main).unwrap();
        assert!(files.current().excluded_by(&a).is_none());
        assert!(files.current().excluded_by(&b).is_some());

        // A file removed un-excludes.
        std::fs::remove_file(dir.join("10-x.conf")).unwrap();
        assert!(files.current().excluded_by(&c).is_none());
        std::fs::remove_file(&main).unwrap();
        assert!(files.current().excluded_by(&b).is_none());
        assert!(files.current().is_empty());
    }

    #[test]
    fn unreadable_files_exclude_nothing_and_warn_once() {
        let etc = TempDir::new("unreadable");
        let dir = etc.0.join("exclusions.conf.d");
        std::fs::create_dir_all(dir.join("25-broken.conf")).unwrap();
        std::fs::write(
            dir.join("20-ok.conf"),
            "[exclusions]\nexclusion = nqn=nqn.a\n",
        )
        .unwrap();
        std::fs::write(dir.join("30-latin1.conf"), b"[exclusions]\n# caf\xe9\n").unwrap();
        let mut files = ExclusionFiles::new(&etc.0);
        let warnings = files.refresh().unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with(&format!(
            "unable to read {}: ",
            dir.join("25-broken.conf").display()
        )));
        assert!(warnings[0].ends_with("; nothing in it is excluded"));
        assert_eq!(
            warnings[1],
            format!(
                "unable to read {}: not UTF-8; nothing in it is excluded",
                dir.join("30-latin1.conf").display()
            )
        );
        assert_eq!(files.list.len(), 1, "the readable file still counts");
        assert_eq!(files.refresh(), None, "no change, no second warning");

        // A drop-in directory that is a file cannot be listed.
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, "").unwrap();
        let warnings = files.refresh().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with(&format!("unable to list {}: ", dir.display())));
        assert!(files.current().is_empty());
    }
}
