//! The INI dialect of nvme-cli 3's host-wide files (exclusions.conf, nvme-fabrics.conf).
//!
//! One item per line: `[section]`, `key = value`, a blank line, or a comment whose first non-blank
//! character is `#` or `;`. There are no inline comments (exclusion and controller values are
//! `;`-separated lists), no quoting and no continuation lines. Keys and values are split at the first
//! `=` and trimmed; `key =` with nothing after the `=` is its own case ([`Item::KeyValue`] with
//! `value: None`): the files use it to reset a setting to the kernel default.
//!
//! The tokenizer takes `&str` and never panics; the loaders below read bytes and turn non-UTF-8 into
//! an error that names the file. Problems never quote the line, so a malformed line holding a secret
//! does not end up in the log.
//!
//! # References
//! - nvme-cli Documentation/nvme-fabrics.conf.txt, libnvme/design/{EXCLUSIONS,CONFIG}.md

use std::fmt;
use std::path::{Path, PathBuf};

/// What one non-blank, non-comment line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// `[name]`, the name trimmed.
    Section(&'a str),
    /// `key = value`; `value` is `None` for `key =` (an explicit empty value).
    KeyValue {
        key: &'a str,
        value: Option<&'a str>,
    },
}

/// An item and the line it is on (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub line: usize,
    pub item: Item<'a>,
}

/// Why a line is not an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// `[name` or `[name] trailing`.
    BadSection,
    /// `[]`
    EmptySection,
    /// A line that is neither a section, a `key = value` nor a comment.
    NoEquals,
    /// `= value`
    EmptyKey,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::BadSection => "a section header is '[name]' alone on its line",
            Problem::EmptySection => "empty section name",
            Problem::NoEquals => "expected '[section]', 'key = value' or a comment",
            Problem::EmptyKey => "expected a key before '='",
        })
    }
}

/// A line that is not an item: `FILE:LINE: problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error<'a> {
    pub file: &'a str,
    pub line: usize,
    pub problem: Problem,
}

impl fmt::Display for Error<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

/// The items of `text`, in order; `file` only names the source in errors.
pub fn tokens<'a>(text: &'a str, file: &'a str) -> Tokens<'a> {
    // Editors on other systems may leave a byte order mark; it is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Tokens {
        lines: text.lines().enumerate(),
        file,
    }
}

/// Iterator returned by [`tokens`].
pub struct Tokens<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    file: &'a str,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<Token<'a>, Error<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        for (index, raw) in self.lines.by_ref() {
            let line = index + 1;
            let error = |problem| {
                Err(Error {
                    file: self.file,
                    line,
                    problem,
                })
            };
            let s = raw.trim();
            if s.is_empty() || s.starts_with('#') || s.starts_with(';') {
                continue;
            }
            if let Some(rest) = s.strip_prefix('[') {
                return Some(match rest.strip_suffix(']') {
                    Some(name) if name.contains([']', '[']) => error(Problem::BadSection),
                    Some(name) if name.trim().is_empty() => error(Problem::EmptySection),
                    Some(name) => Ok(Token {
                        line,
                        item: Item::Section(name.trim()),
                    }),
                    None => error(Problem::BadSection),
                });
            }
            return Some(match s.split_once('=') {
                None => error(Problem::NoEquals),
                Some((key, _)) if key.trim().is_empty() => error(Problem::EmptyKey),
                Some((key, value)) => {
                    let value = value.trim();
                    Ok(Token {
                        line,
                        item: Item::KeyValue {
                            key: key.trim(),
                            value: (!value.is_empty()).then_some(value),
                        },
                    })
                }
            });
        }
        None
    }
}

/// Read a configuration file whole. `Ok(None)`: it does not exist, which is no error for these
/// files. The error is a log line naming the file (`unable to read FILE: reason`).
pub fn read_file(path: &Path) -> Result<Option<String>, String> {
    let what = || format!("read {}", path.display());
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| crate::error::Error::invalid(what(), "not UTF-8").to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::Error::io(what(), &e).to_string()),
    }
}

/// The drop-in directory of `main`: `main` with `.d` appended (`exclusions.conf.d`).
pub fn drop_in_dir(main: &Path) -> PathBuf {
    let mut dir = main.as_os_str().to_owned();
    dir.push(".d");
    PathBuf::from(dir)
}

/// The `*.conf` files in `dir`, sorted by name (byte order, as a shell glob in the C locale). Names
/// starting with `.` are left out, as the glob does (editors keep their swap files there). A
/// missing directory has none.
pub fn drop_ins(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.ends_with(b".conf") && !bytes.starts_with(b".") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<Result<Token<'_>, Error<'_>>> {
        tokens(text, "f.conf").collect()
    }

    fn kv<'a>(line: usize, key: &'a str, value: Option<&'a str>) -> Result<Token<'a>, Error<'a>> {
        Ok(Token {
            line,
            item: Item::KeyValue { key, value },
        })
    }

    #[test]
    fn sections_keys_comments_and_blank_lines() {
        let text = "# comment\n\n  ; also a comment\n[ Host ]\nhostnqn = nqn.x\n\
                    \tkey=a=b;c=d  \r\nempty =\n   [Subsystem]\n";
        assert_eq!(
            all(text),
            [
                Ok(Token {
                    line: 4,
                    item: Item::Section("Host")
                }),
                kv(5, "hostnqn", Some("nqn.x")),
                kv(6, "key", Some("a=b;c=d")),
                kv(7, "empty", None),
                Ok(Token {
                    line: 8,
                    item: Item::Section("Subsystem")
                }),
            ]
        );
    }

    #[test]
    fn empty_value_differs_from_a_value() {
        assert_eq!(all("a =   \n"), [kv(1, "a", None)]);
        assert_eq!(all("a = 0\n"), [kv(1, "a", Some("0"))]);
        assert_eq!(all("a==\n"), [kv(1, "a", Some("="))]);
    }

    #[test]
    fn comments_are_whole_lines_only() {
        // `;` separates the fields of an exclusion: it must not start a comment mid-line.
        assert_eq!(all("x = a;b # c\n"), [kv(1, "x", Some("a;b # c"))]);
    }

    #[test]
    fn errors_name_file_and_line_and_never_quote_it() {
        let text = "[Host\nDHHC-1:00:secret\n= v\n[]\n[a] b\n[a]]\nok = 1\n";
        let got: Vec<String> = all(text)
            .into_iter()
            .map(|r| match r {
                Ok(t) => format!("{t:?}"),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(
            got,
            [
                "f.conf:1: a section header is '[name]' alone on its line",
                "f.conf:2: expected '[section]', 'key = value' or a comment",
                "f.conf:3: expected a key before '='",
                "f.conf:4: empty section name",
                "f.conf:5: a section header is '[name]' alone on its line",
                "f.conf:6: a section header is '[name]' alone on its line",
                "Token { line: 7, item: KeyValue { key: \"ok\", value: Some(\"1\") } }",
            ]
        );
        assert!(!got.iter().any(|m| m.contains("secret")));
    }

    #[test]
    fn byte_order_mark_and_odd_bytes() {
        assert_eq!(
            all("\u{feff}[x]\n"),
            [Ok(Token {
                line: 1,
                item: Item::Section("x")
            })]
        );
        // Control characters and multi-byte text are values like any other; no panic.
        assert_eq!(all("k\u{0}=\u{7f}é\n"), [kv(1, "k\u{0}", Some("\u{7f}é"))]);
        assert_eq!(all("\r\r\n\n"), []);
        assert_eq!(all(""), []);
    }

    #[test]
    fn drop_in_dir_appends_dot_d() {
        assert_eq!(
            drop_in_dir(Path::new("/etc/nvme/exclusions.conf")),
            PathBuf::from("/etc/nvme/exclusions.conf.d")
        );
    }

    #[test]
    fn drop_ins_are_conf_files_sorted_by_name() {
        let dir = std::env::temp_dir().join(format!("nvme-monitor-ini-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(drop_ins(&dir).unwrap(), Vec::<PathBuf>::new());
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "b.conf",
            "a.conf",
            "10.conf",
            ".hidden.conf",
            "c.conf~",
            "README",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let got = drop_ins(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<_> = got.iter().filter_map(|p| p.file_name()).collect();
        assert_eq!(names, ["10.conf", "a.conf", "b.conf"]);
    }

    #[test]
    fn read_file_absent_unreadable_and_not_utf8() {
        let dir = std::env::temp_dir().join(format!("nvme-monitor-ini-r-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.conf");
        assert_eq!(read_file(&f), Ok(None));
        std::fs::write(&f, b"[a]\n\xff\n").unwrap();
        assert_eq!(
            read_file(&f),
            Err(format!("unable to read {}: not UTF-8", f.display()))
        );
        std::fs::write(&f, "[a]\n").unwrap();
        assert_eq!(read_file(&f), Ok(Some("[a]\n".into())));
        // A directory cannot be read as a file (EISDIR).
        let e = read_file(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            e.starts_with(&format!("unable to read {}: ", dir.display())),
            "{e}"
        );
    }
}
