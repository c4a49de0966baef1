//! `nvme-monitor status`: what the running daemon knows, published in `<state-dir>/status`.
//!
//! The daemon rewrites the file whenever what it shows changes, atomically as every file in the
//! state directory (see [`crate::statedir`]). `nvme-monitor status` reads it, checks that its pid is
//! a live nvme-monitor, and joins it with sysfs as it is now: each controller the file names is
//! shown in its current state, or as `gone` when sysfs no longer has it (or has another controller
//! under that name: the identity differs).
//!
//! This module is plain data and text. The daemon fills a [`Snapshot`] from its engine; nothing here
//! knows the engine's types.
//!
//! # The file (line based, UTF-8, version 1)
//! ```text
//! nvme-monitor-status 1
//! daemon pid=1234 version=0.1.0 started=1767225600 updated=1767225690 table_used=1 table_capacity=128
//! options autoconnect=1 persistent=1 keep=0 dry_run=0 cmdline=0 owner=nvme-monitor discovery_conf=/etc/nvme/discovery.conf fabrics_conf=/etc/nvme/nvme-fabrics.conf prune_grace=300 epcsd_poll_interval=15
//! addr transport=tcp traddr=192.168.1.3 trsvcid=8009 host_traddr= host_iface= hostnqn= origin=config dc=nvme0 dc_ino=4294969412 dc_owner=ours last_at=1767225690 last_result=failed last_error=connect%20refused retry_at=1767225702
//! io name=nvme3 ino=4294969500 subsysnqn=nqn.2014-08.org.example:disk1
//! end 1
//! ```
//! - Values are percent-escaped as in the state file (`%`, space, control bytes, non-ASCII), so an
//!   error text with blanks or newlines in it stays one word and reads back unchanged.
//! - `daemon` and `options` come once each, before the addresses. Each `addr` line is followed by
//!   an `io` line per I/O controller connected from that address. `end N` counts the `addr` lines,
//!   so a truncated file is detected.
//! - Times are Unix seconds. `ino` is the controller's sysfs identity
//!   ([`crate::sysfs::Sysfs::identity`]), 0 when unknown. Booleans are `1` or `0`.
//! - Left out when there is nothing to say: `subsysnqn` (only an address the configuration
//!   connects a subsystem at directly, nvme-fabrics.conf `[Subsystem]`, has it, and never a `dc`);
//!   `dc` with its `dc_ino` and `dc_owner` (`ours`,
//!   `adopted`, `foreign` or `claimed`, the last with `dc_claimed_by`); `last_at` with its
//!   `last_result` (`ok` or `failed`) and `last_error`; `retry_at`; and `options`'
//!   `discovery_conf` and `fabrics_conf` (with `--no-config`).
//! - Every field appears once. Anything else (an unknown field, line or version) refuses the whole
//!   file: only the daemon writes it, and a status made from part of it would mislead.
//!
//! # JSON (`status -o json`)
//! One object; times are Unix seconds, durations seconds unless named otherwise, and every key is
//! always present (`null` when there is nothing to say):
//! - `running`: `false` when no daemon runs; then the only other key is `reason` (a sentence).
//! - `now`: when the status was taken.
//! - `daemon`: `pid`, `version`, `started`, `updated` (when the daemon last wrote the file),
//!   `table_used`, `table_capacity` (addresses), `summary` (the sd_notify STATUS= line), and
//!   `options`: `autoconnect`, `persistent`, `keep`, `dry_run`, `cmdline` (booleans), `owner`,
//!   `discovery_conf`, `fabrics_conf` (paths, `null` with `--no-config`), `prune_grace`,
//!   `epcsd_poll_interval` (minutes).
//! - `addresses`: one object per discovery address: `transport`, `traddr`, `trsvcid`, `host_traddr`,
//!   `host_iface`, `hostnqn` (`""` when unset), `origin` (`config`, `fc`, `referral`, `aen`,
//!   `startup`), `subsysnqn` (`null` for a discovery address; the subsystem connected here directly
//!   without discovery), `discovery_controller` (`null`, or `name`, `owner`: `ours`, `adopted`, `foreign` or
//!   `claimed`, `claimed_by`: the other orchestrator's name or `null`, `state`), `last_discovery`
//!   (`null`, or `time`, `result`: `ok` or `failed`, `error`: text or `null`), `next_retry` (a time
//!   or `null`), `retry_in` (seconds from `now`, 0 when due, or `null`), and `io_controllers`: a list
//!   of `name`, `subsysnqn`, `state`.
//! - A controller's `state` is sysfs's now (`live`, `connecting`, `resetting`, `deleting`,
//!   `deleting (no IO)`, `dead`, `new`, `unknown`), or `gone`.
//!
//! # References
//! - proc_pid_comm(5), proc_pid_exe(5): telling a live daemon from a reused pid
//! - sd_notify(3) `STATUS=`

use std::fmt::Write;
use std::path::Path;

use crate::cli::{Args, OutputFormat, StatusArgs};
use crate::error::{Error, Result};
use crate::json::Value;
use crate::state::{escape, number, unescape};
use crate::statedir::StateDir;
use crate::sysfs::{Controller, CtrlState};

pub const MAGIC: &str = "nvme-monitor-status";
pub const VERSION: u32 = 1;
pub const FILE_NAME: &str = "status";

/// `status` exits with this when no daemon runs, or its status cannot be read.
pub const EXIT_NOT_RUNNING: i32 = 1;

/// Everything the daemon publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub daemon: DaemonInfo,
    pub addrs: Vec<AddrStatus>,
}

/// The daemon itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonInfo {
    pub pid: u32,
    /// `CARGO_PKG_VERSION` of the daemon, which after an upgrade is not that of `status`.
    pub version: String,
    /// Unix seconds.
    pub started: u64,
    /// When this snapshot was taken, Unix seconds.
    pub updated: u64,
    /// Addresses in the connection table.
    pub table_used: u32,
    pub table_capacity: u32,
    pub options: Options,
}

/// The options the daemon runs with, as they took effect (defaults filled in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub autoconnect: bool,
    pub persistent: bool,
    pub keep: bool,
    pub dry_run: bool,
    pub cmdline: bool,
    pub owner: String,
    /// discovery.conf; `None` when not read (`--no-config`).
    pub discovery_conf: Option<String>,
    /// nvme-fabrics.conf; `None` when not read (`--no-config`).
    pub fabrics_conf: Option<String>,
    /// Seconds.
    pub prune_grace: u64,
    /// Minutes.
    pub epcsd_poll_interval: u64,
}

impl Options {
    /// What the command line asked for. A file the kernel command line made the daemon skip
    /// (`rd.nvmf.nostatic`, `rd.nvmf.discover=fc,auto`) is still named: clear it after loading.
    pub fn from_args(a: &Args) -> Options {
        let path = |p: &Path| (!a.no_config).then(|| p.display().to_string());
        Options {
            autoconnect: a.autoconnect,
            persistent: a.persistent,
            keep: a.keep,
            dry_run: a.dry_run,
            cmdline: a.cmdline,
            owner: a.owner.clone(),
            discovery_conf: path(&a.config_file),
            fabrics_conf: path(&a.fabrics_config),
            prune_grace: a.prune_grace.into(),
            epcsd_poll_interval: a.epcsd_poll_interval.into(),
        }
    }
}

/// One discovery address (a slot of the connection table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrStatus {
    pub transport: String,
    /// Address fields are empty when unset.
    pub traddr: String,
    pub trsvcid: String,
    pub host_traddr: String,
    pub host_iface: String,
    pub hostnqn: String,
    /// `table::Origin::name`: config, fc, referral, aen, startup.
    pub origin: String,
    /// Empty for a discovery address; else the NVM subsystem the configuration has connected
    /// here directly (nvme-fabrics.conf `[Subsystem]`), which has no discovery controller.
    pub subsysnqn: String,
    pub dc: Option<DcStatus>,
    /// `None` until the first discovery finished.
    pub last: Option<LastDiscovery>,
    /// When the next attempt is due after a failure, Unix seconds.
    pub next_retry: Option<u64>,
    /// The I/O controllers connected from this address's discovery log.
    pub io: Vec<IoCtrl>,
}

/// The discovery controller serving an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DcStatus {
    /// `nvmeN`
    pub name: String,
    /// Its sysfs identity; 0 when unknown.
    pub ino: u64,
    pub owner: DcOwner,
}

/// Whose the discovery controller is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DcOwner {
    /// This daemon created it.
    #[default]
    Ours,
    /// An earlier instance created it and handed it over: ours now.
    Adopted,
    /// Somebody else's (nvme-cli, an admin): used, never deleted.
    Foreign,
    /// Registered to another orchestrator in nvme-cli 3's registry, by this name.
    Claimed(String),
}

impl DcOwner {
    /// The file's and JSON's word for it.
    pub fn name(&self) -> &'static str {
        match self {
            DcOwner::Ours => "ours",
            DcOwner::Adopted => "adopted",
            DcOwner::Foreign => "foreign",
            DcOwner::Claimed(_) => "claimed",
        }
    }

    fn claimed_by(&self) -> Option<&str> {
        match self {
            DcOwner::Claimed(who) => Some(who),
            _ => None,
        }
    }
}

/// How the last discovery run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastDiscovery {
    /// Unix seconds.
    pub at: u64,
    pub ok: bool,
    /// Why it failed (may be empty; may hold any text).
    pub error: String,
}

/// An I/O controller connected from a discovery log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoCtrl {
    /// `nvmeN`
    pub name: String,
    /// Its sysfs identity; 0 when unknown.
    pub ino: u64,
    pub subsysnqn: String,
}

/// Why a status file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusError {
    Empty,
    BadMagic,
    Version(String),
    /// No `end` line, or its count disagrees.
    Truncated,
    Line {
        line: usize,
        why: String,
    },
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusError::Empty => f.write_str("file is empty"),
            StatusError::BadMagic => write!(f, "first line is not '{MAGIC} {VERSION}'"),
            StatusError::Version(v) => {
                write!(
                    f,
                    "unsupported version '{v}' (this reads version {VERSION})"
                )
            }
            StatusError::Truncated => {
                f.write_str("no valid 'end' line: file is truncated or was edited")
            }
            StatusError::Line { line, why } => write!(f, "line {line}: {why}"),
        }
    }
}

impl std::error::Error for StatusError {}

// ---- the file ----

/// One line's fields, each written as ` key=value`.
struct Line(String);

impl Line {
    fn new(kind: &str) -> Line {
        Line(kind.to_owned())
    }

    fn str(&mut self, k: &str, v: &str) -> &mut Line {
        self.0.push(' ');
        self.0.push_str(k);
        self.0.push('=');
        escape(v, &mut self.0);
        self
    }

    fn num(&mut self, k: &str, v: u64) -> &mut Line {
        let _ = write!(self.0, " {k}={v}");
        self
    }

    fn flag(&mut self, k: &str, v: bool) -> &mut Line {
        self.num(k, v.into())
    }

    fn end(&mut self, out: &mut String) {
        out.push_str(&self.0);
        out.push('\n');
    }
}

/// The file's text for `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = format!("{MAGIC} {VERSION}\n");
    let d = &s.daemon;
    Line::new("daemon")
        .num("pid", d.pid.into())
        .str("version", &d.version)
        .num("started", d.started)
        .num("updated", d.updated)
        .num("table_used", d.table_used.into())
        .num("table_capacity", d.table_capacity.into())
        .end(&mut out);
    let o = &d.options;
    let mut l = Line::new("options");
    l.flag("autoconnect", o.autoconnect)
        .flag("persistent", o.persistent)
        .flag("keep", o.keep)
        .flag("dry_run", o.dry_run)
        .flag("cmdline", o.cmdline)
        .str("owner", &o.owner);
    if let Some(p) = &o.discovery_conf {
        l.str("discovery_conf", p);
    }
    if let Some(p) = &o.fabrics_conf {
        l.str("fabrics_conf", p);
    }
    l.num("prune_grace", o.prune_grace)
        .num("epcsd_poll_interval", o.epcsd_poll_interval)
        .end(&mut out);
    for a in &s.addrs {
        render_addr(a, &mut out);
    }
    let _ = writeln!(out, "end {}", s.addrs.len());
    out
}

fn render_addr(a: &AddrStatus, out: &mut String) {
    let mut l = Line::new("addr");
    l.str("transport", &a.transport)
        .str("traddr", &a.traddr)
        .str("trsvcid", &a.trsvcid)
        .str("host_traddr", &a.host_traddr)
        .str("host_iface", &a.host_iface)
        .str("hostnqn", &a.hostnqn)
        .str("origin", &a.origin);
    if !a.subsysnqn.is_empty() {
        l.str("subsysnqn", &a.subsysnqn);
    }
    if let Some(dc) = &a.dc {
        l.str("dc", &dc.name)
            .num("dc_ino", dc.ino)
            .str("dc_owner", dc.owner.name());
        if let Some(who) = dc.owner.claimed_by() {
            l.str("dc_claimed_by", who);
        }
    }
    if let Some(last) = &a.last {
        l.num("last_at", last.at)
            .str("last_result", if last.ok { "ok" } else { "failed" })
            .str("last_error", &last.error);
    }
    if let Some(at) = a.next_retry {
        l.num("retry_at", at);
    }
    l.end(out);
    for io in &a.io {
        Line::new("io")
            .str("name", &io.name)
            .num("ino", io.ino)
            .str("subsysnqn", &io.subsysnqn)
            .end(out);
    }
}

/// A line's `key=value` words, taken one by one; what is left at the end was not expected.
struct Fields<'a> {
    fields: Vec<(&'a str, Option<&'a str>)>,
}

type Why = std::result::Result<(), String>;

impl<'a> Fields<'a> {
    fn parse(words: &'a str) -> std::result::Result<Fields<'a>, String> {
        let mut fields: Vec<(&str, Option<&str>)> = Vec::new();
        for w in words.split(' ') {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("field '{}' has no '='", preview(w)))?;
            if fields.iter().any(|(seen, _)| *seen == k) {
                return Err(format!("field {} appears twice", preview(k)));
            }
            fields.push((k, Some(v)));
        }
        Ok(Fields { fields })
    }

    fn raw(&mut self, k: &str) -> Option<&'a str> {
        self.fields
            .iter_mut()
            .find(|(name, _)| *name == k)?
            .1
            .take()
    }

    fn opt_str(&mut self, k: &str) -> std::result::Result<Option<String>, String> {
        self.raw(k)
            .map(|v| unescape(v).ok_or_else(|| format!("bad escape in {k}")))
            .transpose()
    }

    fn str(&mut self, k: &str) -> std::result::Result<String, String> {
        self.opt_str(k)?.ok_or_else(|| format!("missing {k}"))
    }

    fn opt_num<T: std::str::FromStr>(&mut self, k: &str) -> std::result::Result<Option<T>, String> {
        self.raw(k).map(|v| number(k, v)).transpose()
    }

    fn num<T: std::str::FromStr>(&mut self, k: &str) -> std::result::Result<T, String> {
        self.opt_num(k)?.ok_or_else(|| format!("missing {k}"))
    }

    fn flag(&mut self, k: &str) -> std::result::Result<bool, String> {
        match self.raw(k) {
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(v) => Err(format!("bad {k} '{}': expected 1 or 0", preview(v))),
            None => Err(format!("missing {k}")),
        }
    }

    fn name(&mut self, k: &str) -> std::result::Result<String, String> {
        nvme_name(k, self.str(k)?)
    }

    /// Every field was taken: one that was not is not ours.
    fn finish(self) -> Why {
        match self.fields.iter().find(|(_, v)| v.is_some()) {
            Some((k, _)) => Err(format!("unexpected field '{}'", preview(k))),
            None => Ok(()),
        }
    }
}

/// Only names sysfs could have: status looks them up there.
fn nvme_name(k: &str, name: String) -> std::result::Result<String, String> {
    match crate::sysfs::instance_of(&name) {
        Some(_) => Ok(name),
        None => Err(format!("bad {k} '{}': not nvmeN", preview(&name))),
    }
}

/// The start of what came from the file, for a message: never all of a long line.
fn preview(s: &str) -> String {
    s.chars().take(24).flat_map(char::escape_default).collect()
}

fn parse_daemon(words: &str) -> std::result::Result<DaemonInfo, String> {
    let mut f = Fields::parse(words)?;
    let d = DaemonInfo {
        pid: f.num("pid")?,
        version: f.str("version")?,
        started: f.num("started")?,
        updated: f.num("updated")?,
        table_used: f.num("table_used")?,
        table_capacity: f.num("table_capacity")?,
        options: Options::default(),
    };
    f.finish()?;
    Ok(d)
}

fn parse_options(words: &str) -> std::result::Result<Options, String> {
    let mut f = Fields::parse(words)?;
    let o = Options {
        autoconnect: f.flag("autoconnect")?,
        persistent: f.flag("persistent")?,
        keep: f.flag("keep")?,
        dry_run: f.flag("dry_run")?,
        cmdline: f.flag("cmdline")?,
        owner: f.str("owner")?,
        discovery_conf: f.opt_str("discovery_conf")?,
        fabrics_conf: f.opt_str("fabrics_conf")?,
        prune_grace: f.num("prune_grace")?,
        epcsd_poll_interval: f.num("epcsd_poll_interval")?,
    };
    f.finish()?;
    Ok(o)
}

fn parse_addr(words: &str) -> std::result::Result<AddrStatus, String> {
    let mut f = Fields::parse(words)?;
    let mut a = AddrStatus {
        transport: f.str("transport")?,
        traddr: f.str("traddr")?,
        trsvcid: f.str("trsvcid")?,
        host_traddr: f.str("host_traddr")?,
        host_iface: f.str("host_iface")?,
        hostnqn: f.str("hostnqn")?,
        origin: f.str("origin")?,
        subsysnqn: f.opt_str("subsysnqn")?.unwrap_or_default(),
        ..AddrStatus::default()
    };
    if let Some(name) = f.opt_str("dc")? {
        let name = nvme_name("dc", name)?;
        let ino = f.num("dc_ino")?;
        let owner = match f.str("dc_owner")?.as_str() {
            "ours" => DcOwner::Ours,
            "adopted" => DcOwner::Adopted,
            "foreign" => DcOwner::Foreign,
            "claimed" => DcOwner::Claimed(f.str("dc_claimed_by")?),
            other => return Err(format!("unknown dc_owner '{}'", preview(other))),
        };
        a.dc = Some(DcStatus { name, ino, owner });
    }
    if let Some(at) = f.opt_num("last_at")? {
        let ok = match f.str("last_result")?.as_str() {
            "ok" => true,
            "failed" => false,
            other => return Err(format!("unknown last_result '{}'", preview(other))),
        };
        a.last = Some(LastDiscovery {
            at,
            ok,
            error: f.str("last_error")?,
        });
    }
    a.next_retry = f.opt_num("retry_at")?;
    f.finish()?;
    Ok(a)
}

fn parse_io(words: &str) -> std::result::Result<IoCtrl, String> {
    let mut f = Fields::parse(words)?;
    let io = IoCtrl {
        name: f.name("name")?,
        ino: f.num("ino")?,
        subsysnqn: f.str("subsysnqn")?,
    };
    f.finish()?;
    Ok(io)
}

/// Parse a status file: all of it, or an error saying where it went wrong.
pub fn parse(text: &str) -> std::result::Result<Snapshot, StatusError> {
    let mut lines = text.split('\n');
    let header = lines
        .next()
        .filter(|h| !h.is_empty())
        .ok_or(StatusError::Empty)?;
    let version = header
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(StatusError::BadMagic)?;
    if version != "1" {
        return Err(StatusError::Version(preview(version)));
    }
    let mut daemon = None;
    let mut options = None;
    let mut addrs: Vec<AddrStatus> = Vec::new();
    let mut end = None;
    for (i, line) in lines.enumerate() {
        let at = |why: String| StatusError::Line { line: i + 2, why };
        if end.is_some() {
            // Only the newline after `end`; anything more was appended by someone else.
            if !line.is_empty() {
                return Err(StatusError::Truncated);
            }
            continue;
        }
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "daemon" if daemon.is_none() && addrs.is_empty() => {
                daemon = Some(parse_daemon(rest).map_err(at)?)
            }
            "options" if options.is_none() && addrs.is_empty() => {
                options = Some(parse_options(rest).map_err(at)?)
            }
            "addr" if daemon.is_some() && options.is_some() => {
                addrs.push(parse_addr(rest).map_err(at)?)
            }
            "io" => match addrs.last_mut() {
                Some(a) => a.io.push(parse_io(rest).map_err(at)?),
                None => return Err(at("an io line before any addr line".into())),
            },
            "end" => {
                let n: usize = number("count", rest).map_err(|_| StatusError::Truncated)?;
                if n != addrs.len() {
                    return Err(StatusError::Truncated);
                }
                end = Some(n);
            }
            "daemon" | "options" | "addr" => {
                return Err(at(format!(
                    "'{kind}' line out of place (expected daemon, options, then addr and io lines)"
                )));
            }
            _ => return Err(at(format!("unknown line '{}'", preview(kind)))),
        }
    }
    // Also catches a file cut before the daemon line: no end, no status.
    if end.is_none() {
        return Err(StatusError::Truncated);
    }
    let (Some(mut daemon), Some(options)) = (daemon, options) else {
        return Err(StatusError::Truncated);
    };
    daemon.options = options;
    Ok(Snapshot { daemon, addrs })
}

/// Replace `dir/status` atomically with `text` (see [`StateDir::replace`]). 0644: nothing secret
/// in it, though the state directory itself is closed to others.
pub fn write(dir: &Path, text: &str) -> Result<()> {
    StateDir::create(dir)?.replace(FILE_NAME, text.as_bytes(), 0o644)
}

/// Remove `dir/status` when the daemon stops, so that nobody reads a stale one; `Ok(false)` when
/// there was none.
pub fn remove(dir: &Path) -> Result<bool> {
    match StateDir::open(dir)? {
        Some(sd) => sd.remove(FILE_NAME),
        None => Ok(false),
    }
}

/// The file's text; `None` when there is none (or no state directory).
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

/// The wall clock in Unix seconds (0 if it reads before 1970).
pub fn unix_now() -> u64 {
    unix_now_ms() / 1000
}

/// The wall clock in Unix milliseconds (0 if it reads before 1970).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---- what `status` shows ----

/// The sd_notify `STATUS=` line: "4 discovery controllers, 12 subsystems connected, 1 address
/// retrying" (the last part only when an address is). Subsystems are counted once however many
/// paths lead to them.
pub fn summary(s: &Snapshot) -> String {
    let dcs = s.addrs.iter().filter(|a| a.dc.is_some()).count();
    let mut nqns: Vec<&str> = s
        .addrs
        .iter()
        .flat_map(|a| &a.io)
        .map(|io| io.subsysnqn.as_str())
        .collect();
    let unnamed = nqns.iter().filter(|n| n.is_empty()).count();
    nqns.retain(|n| !n.is_empty());
    nqns.sort_unstable();
    nqns.dedup();
    let retrying = s.addrs.iter().filter(|a| a.next_retry.is_some()).count();
    let mut out = format!(
        "{}, {} connected",
        count(dcs, "discovery controller", "discovery controllers"),
        count(nqns.len() + unnamed, "subsystem", "subsystems")
    );
    if retrying > 0 {
        out.push_str(", ");
        out.push_str(&count(retrying, "address retrying", "addresses retrying"));
    }
    out
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// sysfs's word for a state; "unknown" rather than a sentence for one this build does not know.
fn state_name(s: CtrlState) -> &'static str {
    match s {
        CtrlState::Other => "unknown",
        s => s.name(),
    }
}

/// The state of the controller the file names, now: "gone" when sysfs has no controller of that
/// name, or another one under it (instance numbers are reused at once).
fn state_now(name: &str, ino: u64, ctrls: &[Controller]) -> &'static str {
    match ctrls.iter().find(|c| c.name == name) {
        Some(c) if ino == 0 || c.ino == 0 || c.ino == ino => state_name(c.state),
        _ => "gone",
    }
}

/// For a terminal: control characters from the file shown escaped, never sent raw.
fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `tcp traddr=X,trsvcid=Y[,host_traddr=..][,host_iface=..][,hostnqn=..]`, as the log writes an
/// address.
fn addr_title(a: &AddrStatus) -> String {
    let traddr = if a.traddr.is_empty() {
        "none"
    } else {
        &a.traddr
    };
    let mut out = format!("{} traddr={traddr}", a.transport);
    for (k, v) in [
        ("trsvcid", &a.trsvcid),
        ("host_traddr", &a.host_traddr),
        ("host_iface", &a.host_iface),
        ("hostnqn", &a.hostnqn),
    ] {
        if !v.is_empty() {
            let _ = write!(out, ",{k}={v}");
        }
    }
    shown(&out)
}

/// `2026-01-01 12:00:00 UTC`: no time zone database in a static binary, so UTC.
fn utc(t: u64) -> String {
    let (y, m, d) = civil_from_days(t / 86_400);
    let s = t % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`, in unsigned arithmetic since we never go before 1970).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(m <= 2), m, d)
}

/// `12 s`, `3 min 5 s`, `2 h 10 min`, `4 d 1 h`: two units at most, a zero second one left out.
fn duration(s: u64) -> String {
    let (a, ua, b, ub) = match s {
        0..60 => return format!("{s} s"),
        60..3600 => (s / 60, "min", s % 60, "s"),
        3600..86_400 => (s / 3600, "h", s / 60 % 60, "min"),
        _ => (s / 86_400, "d", s / 3600 % 24, "h"),
    };
    if b == 0 {
        format!("{a} {ua}")
    } else {
        format!("{a} {ua} {b} {ub}")
    }
}

/// `<utc> (<duration> ago)`; a time ahead of ours (clocks set back) says so instead.
fn when(t: u64, now: u64) -> String {
    match now.checked_sub(t) {
        Some(ago) => format!("{} ({} ago)", utc(t), duration(ago)),
        None => format!("{} (in {})", utc(t), duration(t - now)),
    }
}

const LABEL: usize = 20;

fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<LABEL$}  {value}");
}

/// What a person reads: the daemon, then one block per address.
pub fn format_normal(s: &Snapshot, ctrls: &[Controller], now: u64) -> String {
    let d = &s.daemon;
    let o = &d.options;
    let mut out = format!(
        "nvme-monitor {} is running as pid {}\n",
        shown(&d.version),
        d.pid
    );
    row(&mut out, "started", &when(d.started, now));
    row(&mut out, "status written", &when(d.updated, now));
    row(&mut out, "summary", &summary(s));
    let table = format!("{} of {} addresses in use", d.table_used, d.table_capacity);
    row(&mut out, "table", &table);
    row(&mut out, "owner", &shown(&o.owner));
    let flags: Vec<&str> = [
        (o.autoconnect, "--autoconnect"),
        (o.persistent, "--persistent"),
        (o.keep, "--keep"),
        (o.dry_run, "--dry-run"),
        (o.cmdline, "--cmdline"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let flags = if flags.is_empty() {
        "none".to_owned()
    } else {
        flags.join(" ")
    };
    row(&mut out, "options", &flags);
    let path = |p: &Option<String>| p.as_deref().map_or("not read (--no-config)".into(), shown);
    row(&mut out, "discovery.conf", &path(&o.discovery_conf));
    row(&mut out, "nvme-fabrics.conf", &path(&o.fabrics_conf));
    row(&mut out, "prune grace", &duration(o.prune_grace));
    let poll = format!(
        "every {}",
        duration(o.epcsd_poll_interval.saturating_mul(60))
    );
    row(&mut out, "EPCSD poll", &poll);
    if s.addrs.is_empty() {
        out.push_str("\nno discovery addresses\n");
    }
    for a in &s.addrs {
        let _ = writeln!(out, "\n{}", addr_title(a));
        normal_addr(&mut out, a, ctrls, now);
    }
    out
}

fn normal_addr(out: &mut String, a: &AddrStatus, ctrls: &[Controller], now: u64) {
    row(out, "origin", &shown(&a.origin));
    if !a.subsysnqn.is_empty() {
        row(
            out,
            "subsystem",
            &format!("{} (connected directly)", shown(&a.subsysnqn)),
        );
    }
    let dc = match &a.dc {
        Some(dc) => {
            let owner = match &dc.owner {
                DcOwner::Claimed(who) => format!("claimed by {}", shown(who)),
                other => other.name().to_owned(),
            };
            let state = state_now(&dc.name, dc.ino, ctrls);
            format!("{} ({owner}): {state}", dc.name)
        }
        None => "none".into(),
    };
    row(out, "discovery controller", &dc);
    let last = match &a.last {
        Some(l) if l.ok => format!("{}: ok", when(l.at, now)),
        Some(l) if l.error.is_empty() => format!("{}: failed", when(l.at, now)),
        Some(l) => format!("{}: failed: {}", when(l.at, now), shown(&l.error)),
        None => "not yet".into(),
    };
    row(out, "last discovery", &last);
    if let Some(at) = a.next_retry {
        let retry = match at.checked_sub(now) {
            Some(0) | None => "due now".to_owned(),
            Some(wait) => format!("in {}", duration(wait)),
        };
        row(out, "next retry", &retry);
    }
    if a.io.is_empty() {
        row(out, "I/O controllers", "none");
    }
    let states: Vec<&str> =
        a.io.iter()
            .map(|io| state_now(&io.name, io.ino, ctrls))
            .collect();
    let name_w = a.io.iter().map(|io| io.name.len()).max().unwrap_or(0);
    let state_w = states.iter().map(|s| s.len()).max().unwrap_or(0);
    for (i, (io, state)) in a.io.iter().zip(&states).enumerate() {
        let label = if i == 0 { "I/O controllers" } else { "" };
        let line = format!(
            "{:<name_w$}  {state:<state_w$}  {}",
            io.name,
            shown(&io.subsysnqn)
        );
        row(out, label, line.trim_end());
    }
}

/// What a program reads: the keys in the module docs, indented as nvme-cli's `-o json`.
pub fn format_json(s: &Snapshot, ctrls: &[Controller], now: u64) -> String {
    let d = &s.daemon;
    let o = &d.options;
    let options = Value::object([
        ("autoconnect", o.autoconnect.into()),
        ("persistent", o.persistent.into()),
        ("keep", o.keep.into()),
        ("dry_run", o.dry_run.into()),
        ("cmdline", o.cmdline.into()),
        ("owner", o.owner.as_str().into()),
        ("discovery_conf", o.discovery_conf.as_deref().into()),
        ("fabrics_conf", o.fabrics_conf.as_deref().into()),
        ("prune_grace", o.prune_grace.into()),
        ("epcsd_poll_interval", o.epcsd_poll_interval.into()),
    ]);
    let daemon = Value::object([
        ("pid", d.pid.into()),
        ("version", d.version.as_str().into()),
        ("started", d.started.into()),
        ("updated", d.updated.into()),
        ("table_used", d.table_used.into()),
        ("table_capacity", d.table_capacity.into()),
        ("summary", summary(s).into()),
        ("options", options),
    ]);
    let addrs = s.addrs.iter().map(|a| json_addr(a, ctrls, now));
    let v = Value::object([
        ("running", true.into()),
        ("now", now.into()),
        ("daemon", daemon),
        ("addresses", Value::array(addrs)),
    ]);
    v.to_pretty() + "\n"
}

fn json_addr(a: &AddrStatus, ctrls: &[Controller], now: u64) -> Value {
    let dc = a.dc.as_ref().map_or(Value::Null, |dc| {
        Value::object([
            ("name", dc.name.as_str().into()),
            ("owner", dc.owner.name().into()),
            ("claimed_by", dc.owner.claimed_by().into()),
            ("state", state_now(&dc.name, dc.ino, ctrls).into()),
        ])
    });
    let last = a.last.as_ref().map_or(Value::Null, |l| {
        Value::object([
            ("time", l.at.into()),
            ("result", if l.ok { "ok" } else { "failed" }.into()),
            (
                "error",
                Some(l.error.as_str()).filter(|e| !e.is_empty()).into(),
            ),
        ])
    });
    let io = a.io.iter().map(|io| {
        Value::object([
            ("name", io.name.as_str().into()),
            ("subsysnqn", io.subsysnqn.as_str().into()),
            ("state", state_now(&io.name, io.ino, ctrls).into()),
        ])
    });
    Value::object([
        ("transport", a.transport.as_str().into()),
        ("traddr", a.traddr.as_str().into()),
        ("trsvcid", a.trsvcid.as_str().into()),
        ("host_traddr", a.host_traddr.as_str().into()),
        ("host_iface", a.host_iface.as_str().into()),
        ("hostnqn", a.hostnqn.as_str().into()),
        ("origin", a.origin.as_str().into()),
        (
            "subsysnqn",
            Some(a.subsysnqn.as_str()).filter(|n| !n.is_empty()).into(),
        ),
        ("discovery_controller", dc),
        ("last_discovery", last),
        ("next_retry", a.next_retry.into()),
        (
            "retry_in",
            a.next_retry.map(|t| t.saturating_sub(now)).into(),
        ),
        ("io_controllers", Value::array(io)),
    ])
}

/// When no daemon runs: a sentence for a person, `running: false` for a program.
pub fn format_not_running(why: &str, output: OutputFormat) -> String {
    match output {
        OutputFormat::Normal => format!("nvme-monitor is not running: {why}\n"),
        OutputFormat::Json => {
            let v = Value::object([("running", false.into()), ("reason", why.into())]);
            v.to_pretty() + "\n"
        }
    }
}

// ---- `nvme-monitor status` ----

/// The name the kernel shows for the daemon (proc_pid_comm(5): at most 15 bytes, ours has 12).
const PROGRAM: &str = "nvme-monitor";

/// What `status` found in the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Running(Snapshot),
    /// Why we say none runs, as a sentence part ("no /run/nvme-monitor/status").
    NotRunning(String),
}

/// Read the status file and check that its pid is a live nvme-monitor. An error when there is a
/// file that cannot be read or parsed (another version's, or an unsafe state directory).
pub fn find(args: &StatusArgs) -> Result<Found> {
    let path = args.state_dir.join(FILE_NAME);
    let Some(text) = read(&args.state_dir)? else {
        return Ok(Found::NotRunning(format!("no {}", path.display())));
    };
    let snap = parse(&text)
        .map_err(|e| Error::invalid(format!("read {}", path.display()), e.to_string()))?;
    let pid = snap.daemon.pid;
    Ok(match not_a_daemon(&args.procfs, pid) {
        None => Found::Running(snap),
        Some(what) => Found::NotRunning(format!(
            "pid {pid} in {} {what}: the file is stale",
            path.display()
        )),
    })
}

/// `None` when `pid` is a live nvme-monitor, else what it is instead. A pid is reused once its
/// process is gone, so a file left by a killed daemon may name any process by now.
fn not_a_daemon(procfs: &Path, pid: u32) -> Option<String> {
    if pid == std::process::id() {
        return Some("is this status command".into());
    }
    let dir = procfs.join(pid.to_string());
    let comm = match std::fs::read(dir.join("comm")) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim_end().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some("is gone".into()),
        Err(e) => return Some(format!("cannot be checked ({e})")),
    };
    if comm == PROGRAM {
        return None;
    }
    // comm is the name it was started as; exe, readable only by root, where its binary is (a
    // daemon started through a link of another name, or upgraded: " (deleted)").
    let exe = std::fs::read_link(dir.join("exe")).ok();
    let exe_name = exe
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(" (deleted)").unwrap_or(n));
    if exe_name == Some(PROGRAM) {
        return None;
    }
    Some(format!("is '{}', not nvme-monitor", shown(&comm)))
}

/// `nvme-monitor status`: 0 when a daemon runs, [`EXIT_NOT_RUNNING`] when none does or its status
/// cannot be read.
pub fn run(args: &StatusArgs) -> i32 {
    run_to(args, &mut std::io::stdout().lock())
}

/// [`run`] with the report written to `out` instead of stdout (errors still go to stderr).
fn run_to(args: &StatusArgs, out: &mut impl std::io::Write) -> i32 {
    let now = unix_now();
    let (text, code) = match find(args) {
        Ok(Found::Running(snap)) => {
            let ctrls = crate::sysfs::Sysfs::new(&args.sysfs).controllers();
            let text = match args.output {
                OutputFormat::Normal => format_normal(&snap, &ctrls, now),
                OutputFormat::Json => format_json(&snap, &ctrls, now),
            };
            (text, crate::cli::EXIT_OK)
        }
        Ok(Found::NotRunning(why)) => (format_not_running(&why, args.output), EXIT_NOT_RUNNING),
        Err(e) => {
            eprintln!("nvme-monitor: error: {e}");
            return EXIT_NOT_RUNNING;
        }
    };
    // Not print!: a closed pipe (`status | head -1`) must not turn into a panic.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(_) => crate::cli::EXIT_FATAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Transport;

    const NQN: &str = "nqn.2014-08.org.example:disk1";

    /// The module docs' example.
    fn example() -> Snapshot {
        Snapshot {
            daemon: DaemonInfo {
                pid: 1234,
                version: "0.1.0".into(),
                started: 1_767_225_600,
                updated: 1_767_225_690,
                table_used: 1,
                table_capacity: 128,
                options: Options {
                    autoconnect: true,
                    persistent: true,
                    owner: "nvme-monitor".into(),
                    discovery_conf: Some("/etc/nvme/discovery.conf".into()),
                    fabrics_conf: Some("/etc/nvme/nvme-fabrics.conf".into()),
                    prune_grace: 300,
                    epcsd_poll_interval: 15,
                    ..Options::default()
                },
            },
            addrs: vec![AddrStatus {
                transport: "tcp".into(),
                traddr: "192.168.1.3".into(),
                trsvcid: "8009".into(),
                origin: "config".into(),
                dc: Some(DcStatus {
                    name: "nvme0".into(),
                    ino: 4_294_969_412,
                    owner: DcOwner::Ours,
                }),
                last: Some(LastDiscovery {
                    at: 1_767_225_690,
                    ok: false,
                    error: "connect refused".into(),
                }),
                next_retry: Some(1_767_225_702),
                io: vec![IoCtrl {
                    name: "nvme3".into(),
                    ino: 4_294_969_500,
                    subsysnqn: NQN.into(),
                }],
                ..AddrStatus::default()
            }],
        }
    }

    /// Two more addresses covering what the example leaves out.
    fn busy() -> Snapshot {
        let mut s = example();
        s.addrs.push(AddrStatus {
            transport: "fc".into(),
            traddr: "nn-0x200400a098d85236:pn-0x201400a098d85236".into(),
            host_traddr: "nn-0x200000109b7db455:pn-0x100000109b7db455".into(),
            origin: "fc".into(),
            dc: Some(DcStatus {
                name: "nvme7".into(),
                ino: 0,
                owner: DcOwner::Claimed("stas".into()),
            }),
            last: Some(LastDiscovery {
                at: 1_767_225_000,
                ok: true,
                error: String::new(),
            }),
            io: vec![
                IoCtrl {
                    name: "nvme10".into(),
                    ino: 10,
                    subsysnqn: NQN.into(),
                },
                IoCtrl {
                    name: "nvme11".into(),
                    ino: 11,
                    subsysnqn: "nqn.2014-08.org.example:disk2".into(),
                },
            ],
            ..AddrStatus::default()
        });
        s.addrs.push(AddrStatus {
            transport: "tcp".into(),
            traddr: "10.0.0.9".into(),
            trsvcid: "8009".into(),
            host_iface: "eth1".into(),
            hostnqn: "nqn.2014-08.org.nvmexpress:uuid:1".into(),
            origin: "referral".into(),
            ..AddrStatus::default()
        });
        s.daemon.table_used = 3;
        s.daemon.options.discovery_conf = None;
        s
    }

    #[test]
    fn the_documented_example_is_what_render_writes() {
        let doc: String = include_str!("status.rs")
            .lines()
            .skip_while(|l| *l != "//! ```text")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| format!("{}\n", l.trim_start_matches("//! ")))
            .collect();
        assert_eq!(render(&example()), doc);
        assert_eq!(parse(&doc), Ok(example()));
    }

    #[test]
    fn round_trip() {
        for s in [example(), busy(), Snapshot::default()] {
            let text = render(&s);
            assert_eq!(parse(&text), Ok(s), "{text}");
        }
        let text = render(&busy());
        assert!(text.contains(" dc=nvme7 dc_ino=0 dc_owner=claimed dc_claimed_by=stas "));
        assert!(text.contains(" origin=referral\n"), "{text}");
        assert!(!text.contains("discovery_conf="));
        assert!(text.ends_with("end 3\n"));
    }

    #[test]
    fn a_direct_subsystem_is_named_in_the_file_the_json_and_the_text() {
        let mut s = example();
        let a = &mut s.addrs[0];
        a.dc = None;
        a.subsysnqn = "nqn.2024-01.io.example:direct".into();
        let text = render(&s);
        assert!(
            text.contains(" origin=config subsysnqn=nqn.2024-01.io.example:direct "),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), s);
        let json = format_json(&s, &[], 0);
        assert!(
            json.contains(r#""subsysnqn": "nqn.2024-01.io.example:direct","#),
            "{json}"
        );
        assert!(
            format_normal(&s, &[], 0).contains(
                "subsystem             nqn.2024-01.io.example:direct (connected directly)"
            )
        );
        // A discovery address says null.
        assert!(format_json(&example(), &[], 0).contains(r#""subsysnqn": null,"#));
    }

    #[test]
    fn hostile_strings_round_trip() {
        let hostile = [
            "",
            " ",
            "two words",
            "line\nbreak\r\n",
            "%",
            "%20",
            "%zz",
            "a=b=c",
            "end 0",
            "\nend 0\naddr x=y",
            "tab\there",
            "\0nul",
            "\u{1b}[31mred\u{1b}[0m",
            "\u{7f}del",
            "é 日本 🦀",
            "\u{2028}\u{feff}",
            "\\x41",
            "'\"",
        ];
        for h in hostile {
            let mut s = busy();
            s.daemon.version = h.into();
            let o = &mut s.daemon.options;
            o.owner = h.into();
            o.fabrics_conf = Some(h.into());
            let a = &mut s.addrs[0];
            a.transport = h.into();
            a.traddr = h.into();
            a.hostnqn = h.into();
            a.origin = h.into();
            a.subsysnqn = h.into();
            a.last.as_mut().unwrap().error = h.into();
            a.io[0].subsysnqn = h.into();
            s.addrs[1].dc.as_mut().unwrap().owner = DcOwner::Claimed(h.into());
            let text = render(&s);
            // Each record stays one line of words, whatever the text held.
            assert_eq!(text.lines().count(), 3 + 3 + 3 + 1, "{h:?}: {text}");
            assert!(text.is_ascii() && !text.contains('\r') && !text.contains('\0'));
            assert_eq!(parse(&text), Ok(s), "{h:?}: {text}");
        }
    }

    fn line_error(text: &str) -> String {
        match parse(text) {
            Err(StatusError::Line { line, why }) => format!("{line}: {why}"),
            other => panic!("expected a line error, got {other:?}\n{text}"),
        }
    }

    /// The example with `old` replaced by `new` (which must be in it).
    fn edited(old: &str, new: &str) -> String {
        let text = render(&example());
        assert!(text.contains(old), "{old}");
        text.replacen(old, new, 1)
    }

    #[test]
    fn refuses_bad_headers_and_truncation() {
        let good = render(&busy());
        assert_eq!(parse(""), Err(StatusError::Empty));
        assert_eq!(parse("\nend 0\n"), Err(StatusError::Empty));
        assert_eq!(parse("nvme-monitor-state 2\n"), Err(StatusError::BadMagic));
        assert_eq!(parse("garbage"), Err(StatusError::BadMagic));
        assert_eq!(
            parse("nvme-monitor-status 2\nend 0\n"),
            Err(StatusError::Version("2".into()))
        );
        assert_eq!(
            parse("nvme-monitor-status 1\nend 0\n"),
            Err(StatusError::Truncated)
        );
        // Cut anywhere: refused whole, never a status made of part of it.
        for cut in 0..good.len() - 1 {
            let r = parse(&good[..cut]);
            assert!(r.is_err(), "cut at {cut} parsed: {r:?}");
        }
        assert_eq!(
            parse(&good.replace("end 3", "end 2")),
            Err(StatusError::Truncated)
        );
        assert_eq!(
            parse(&good.replace("end 3", "end +3")),
            Err(StatusError::Truncated)
        );
        assert_eq!(
            parse(&format!("{good}addr x=y\n")),
            Err(StatusError::Truncated)
        );
        // Without the final newline it is still complete.
        assert_eq!(parse(good.trim_end()), Ok(busy()));
    }

    #[test]
    fn refuses_lines_out_of_place() {
        let text = render(&example());
        let lines: Vec<&str> = text.lines().collect();
        let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
        let (head, daemon, options, addr, io, end) =
            (lines[0], lines[1], lines[2], lines[3], lines[4], lines[5]);
        for (ls, want) in [
            (vec![head, options, daemon, addr, io, end], ""),
            (
                vec![head, daemon, addr, options, io, end],
                "3: 'addr' line out of place",
            ),
            (
                vec![head, daemon, options, io, addr, end],
                "4: an io line before any addr line",
            ),
            (
                vec![head, daemon, daemon, options, end],
                "3: 'daemon' line out of place",
            ),
            (
                vec![head, daemon, options, addr, options, end],
                "5: 'options' line out of place",
            ),
            (vec![head, daemon, options, "", end], "4: unknown line ''"),
            (
                vec![head, daemon, options, "dc nvme0", end],
                "4: unknown line 'dc'",
            ),
        ] {
            let text = join(&ls);
            if want.is_empty() {
                // daemon and options in either order, as long as both come before the addresses.
                assert_eq!(parse(&text), Ok(example()));
            } else {
                assert!(line_error(&text).starts_with(want), "{}", line_error(&text));
            }
        }
    }

    #[test]
    fn refuses_bad_fields() {
        for (old, new, want) in [
            (" pid=1234", " pid=-1", "2: bad pid '-1'"),
            (
                " pid=1234",
                " pid=99999999999",
                "2: bad pid '99999999999': out of range",
            ),
            (" pid=1234", "", "2: missing pid"),
            (" pid=1234", " pid=1 pid=2", "2: field pid appears twice"),
            (
                " pid=1234",
                " pid=1234 color=red",
                "2: unexpected field 'color'",
            ),
            (" pid=1234", " pid=1234  ", "2: field '' has no '='"),
            (" pid=1234", " pid", "2: field 'pid' has no '='"),
            (" keep=0", " keep=no", "3: bad keep 'no': expected 1 or 0"),
            (" owner=nvme-monitor", " owner=%4", "3: bad escape in owner"),
            (
                " owner=nvme-monitor",
                " owner=%FF",
                "3: bad escape in owner",
            ),
            (" dc=nvme0", " dc=sda", "4: bad dc 'sda': not nvmeN"),
            (" dc=nvme0", " dc=nvme", "4: bad dc 'nvme': not nvmeN"),
            (
                " dc=nvme0",
                " dc=nvme0%2F..",
                "4: bad dc 'nvme0/..': not nvmeN",
            ),
            (" dc_ino=4294969412", "", "4: missing dc_ino"),
            (
                " dc_owner=ours",
                " dc_owner=mine",
                "4: unknown dc_owner 'mine'",
            ),
            (
                " dc_owner=ours",
                " dc_owner=claimed",
                "4: missing dc_claimed_by",
            ),
            (
                " dc_owner=ours",
                " dc_owner=ours dc_claimed_by=stas",
                "4: unexpected field 'dc_claimed_by'",
            ),
            (
                " dc=nvme0 dc_ino=4294969412 dc_owner=ours",
                " dc_owner=ours",
                "4: unexpected field 'dc_owner'",
            ),
            (
                " last_result=failed",
                " last_result=maybe",
                "4: unknown last_result 'maybe'",
            ),
            (" last_error=connect%20refused", "", "4: missing last_error"),
            (
                " last_at=1767225690",
                "",
                "4: unexpected field 'last_result'",
            ),
            (" retry_at=1767225702", " retry_at=", "4: bad retry_at ''"),
            (" hostnqn=", "", "4: missing hostnqn"),
            (
                " name=nvme3",
                " name=nvme3x",
                "5: bad name 'nvme3x': not nvmeN",
            ),
            (" subsysnqn=", " nqn=", "5: missing subsysnqn"),
        ] {
            assert_eq!(line_error(&edited(old, new)), want, "{old} -> {new}");
        }
        // A long value is quoted short, and its control characters escaped.
        let long = format!(" dc_owner={}\u{1b}", "x".repeat(100));
        let e = line_error(&edited(" dc_owner=ours", &long));
        assert_eq!(e, format!("4: unknown dc_owner '{}'", "x".repeat(24)));
        let e = line_error(&edited(" dc_owner=ours", " dc_owner=%1B"));
        assert_eq!(e, "4: unknown dc_owner '\\u{1b}'");
    }

    #[test]
    fn error_messages() {
        assert_eq!(StatusError::Empty.to_string(), "file is empty");
        assert_eq!(
            StatusError::BadMagic.to_string(),
            "first line is not 'nvme-monitor-status 1'"
        );
        assert_eq!(
            StatusError::Version("9".into()).to_string(),
            "unsupported version '9' (this reads version 1)"
        );
        assert_eq!(
            StatusError::Truncated.to_string(),
            "no valid 'end' line: file is truncated or was edited"
        );
    }

    #[test]
    fn summary_counts_with_the_right_number() {
        assert_eq!(
            summary(&example()),
            "1 discovery controller, 1 subsystem connected, 1 address retrying"
        );
        // disk1 twice (two paths) is one subsystem.
        assert_eq!(
            summary(&busy()),
            "2 discovery controllers, 2 subsystems connected, 1 address retrying"
        );
        let mut s = busy();
        for a in &mut s.addrs {
            a.next_retry = Some(1);
        }
        assert!(summary(&s).ends_with(", 3 addresses retrying"));
        assert_eq!(
            summary(&Snapshot::default()),
            "0 discovery controllers, 0 subsystems connected"
        );
        // An I/O controller whose subsystem the daemon did not record still counts, once each.
        s.addrs[2].io = vec![IoCtrl::default(), IoCtrl::default()];
        assert!(summary(&s).contains(", 4 subsystems connected"));
    }

    #[test]
    fn utc_dates() {
        for (t, want) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (951_868_799, "2000-02-29 23:59:59 UTC"),
            (1_767_225_600, "2026-01-01 00:00:00 UTC"),
            (1_772_323_199, "2026-02-28 23:59:59 UTC"),
            (1_772_323_200, "2026-03-01 00:00:00 UTC"),
            (4_107_542_400, "2100-03-01 00:00:00 UTC"),
            (253_402_300_799, "9999-12-31 23:59:59 UTC"),
        ] {
            assert_eq!(utc(t), want, "{t}");
        }
        // Whatever a file says: no overflow.
        assert!(utc(u64::MAX).ends_with(" UTC"));
    }

    #[test]
    fn durations() {
        for (s, want) in [
            (0, "0 s"),
            (12, "12 s"),
            (59, "59 s"),
            (60, "1 min"),
            (185, "3 min 5 s"),
            (3600, "1 h"),
            (7800, "2 h 10 min"),
            (86_400, "1 d"),
            (90_000, "1 d 1 h"),
        ] {
            assert_eq!(duration(s), want, "{s}");
        }
        assert!(duration(u64::MAX).ends_with(" h"));
        assert_eq!(
            when(1_767_225_600, 1_767_225_612),
            "2026-01-01 00:00:00 UTC (12 s ago)"
        );
        assert_eq!(
            when(1_767_225_612, 1_767_225_600),
            "2026-01-01 00:00:12 UTC (in 12 s)"
        );
    }

    fn ctrl(name: &str, ino: u64, state: CtrlState) -> Controller {
        Controller {
            name: name.into(),
            instance: crate::sysfs::instance_of(name).unwrap(),
            transport: Transport::Tcp,
            traddr: String::new(),
            trsvcid: String::new(),
            host_traddr: String::new(),
            host_iface: String::new(),
            src_addr: String::new(),
            subsysnqn: NQN.into(),
            state,
            cntrltype: String::new(),
            hostnqn: String::new(),
            cntlid: None,
            ino,
            claimed_by: None,
        }
    }

    /// nvme0 and nvme3 of the example live; nvme7 live whatever its identity; nvme10 reused by
    /// another controller; nvme11 gone.
    fn sysfs_now() -> Vec<Controller> {
        vec![
            ctrl("nvme0", 4_294_969_412, CtrlState::Live),
            ctrl("nvme3", 4_294_969_500, CtrlState::Connecting),
            ctrl("nvme7", 77, CtrlState::Live),
            ctrl("nvme10", 1010, CtrlState::Live),
        ]
    }

    const NOW: u64 = 1_767_225_690;

    #[test]
    fn normal_output() {
        let want = "\
nvme-monitor 0.1.0 is running as pid 1234
  started               2026-01-01 00:00:00 UTC (1 min 30 s ago)
  status written        2026-01-01 00:01:30 UTC (0 s ago)
  summary               2 discovery controllers, 2 subsystems connected, 1 address retrying
  table                 3 of 128 addresses in use
  owner                 nvme-monitor
  options               --autoconnect --persistent
  discovery.conf        not read (--no-config)
  nvme-fabrics.conf     /etc/nvme/nvme-fabrics.conf
  prune grace           5 min
  EPCSD poll            every 15 min

tcp traddr=192.168.1.3,trsvcid=8009
  origin                config
  discovery controller  nvme0 (ours): live
  last discovery        2026-01-01 00:01:30 UTC (0 s ago): failed: connect refused
  next retry            in 12 s
  I/O controllers       nvme3  connecting  nqn.2014-08.org.example:disk1

fc traddr=nn-0x200400a098d85236:pn-0x201400a098d85236,host_traddr=nn-0x200000109b7db455:pn-0x100000109b7db455
  origin                fc
  discovery controller  nvme7 (claimed by stas): live
  last discovery        2025-12-31 23:50:00 UTC (11 min 30 s ago): ok
  I/O controllers       nvme10  gone  nqn.2014-08.org.example:disk1
                        nvme11  gone  nqn.2014-08.org.example:disk2

tcp traddr=10.0.0.9,trsvcid=8009,host_iface=eth1,hostnqn=nqn.2014-08.org.nvmexpress:uuid:1
  origin                referral
  discovery controller  none
  last discovery        not yet
  I/O controllers       none
";
        let s = busy();
        let got = format_normal(&s, &sysfs_now(), NOW);
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn normal_output_edges() {
        let mut s = example();
        s.addrs[0].next_retry = Some(NOW);
        s.addrs[0].last.as_mut().unwrap().error = "bad\nthing \u{1b}[2J".into();
        s.addrs[0].dc.as_mut().unwrap().owner = DcOwner::Adopted;
        s.daemon.options = Options::default();
        let got = format_normal(&s, &[], NOW);
        assert!(got.contains("  next retry            due now\n"), "{got}");
        assert!(
            got.contains(": failed: bad\\nthing \\u{1b}[2J\n"),
            "control characters reach the terminal: {got}"
        );
        assert!(got.contains("  discovery controller  nvme0 (adopted): gone\n"));
        assert!(got.contains("  options               none\n"));
        s.addrs[0].next_retry = Some(NOW - 5);
        s.addrs[0].last.as_mut().unwrap().error.clear();
        let got = format_normal(&s, &[], NOW);
        assert!(got.contains("  next retry            due now\n"), "{got}");
        assert!(got.contains("(0 s ago): failed\n"), "{got}");
        s.addrs.clear();
        assert!(format_normal(&s, &[], NOW).ends_with("\n\nno discovery addresses\n"));
    }

    #[test]
    fn json_output() {
        let got = format_json(&busy(), &sysfs_now(), NOW);
        assert!(got.ends_with("}\n"));
        let want_start = r#"{
  "running": true,
  "now": 1767225690,
  "daemon": {
    "pid": 1234,
    "version": "0.1.0",
    "started": 1767225600,
    "updated": 1767225690,
    "table_used": 3,
    "table_capacity": 128,
    "summary": "2 discovery controllers, 2 subsystems connected, 1 address retrying",
    "options": {
      "autoconnect": true,
      "persistent": true,
      "keep": false,
      "dry_run": false,
      "cmdline": false,
      "owner": "nvme-monitor",
      "discovery_conf": null,
      "fabrics_conf": "/etc/nvme/nvme-fabrics.conf",
      "prune_grace": 300,
      "epcsd_poll_interval": 15
    }
  },
  "addresses": [
    {
      "transport": "tcp",
      "traddr": "192.168.1.3",
      "trsvcid": "8009",
      "host_traddr": "",
      "host_iface": "",
      "hostnqn": "",
      "origin": "config",
      "subsysnqn": null,
      "discovery_controller": {
        "name": "nvme0",
        "owner": "ours",
        "claimed_by": null,
        "state": "live"
      },
      "last_discovery": {
        "time": 1767225690,
        "result": "failed",
        "error": "connect refused"
      },
      "next_retry": 1767225702,
      "retry_in": 12,
      "io_controllers": [
        {
          "name": "nvme3",
          "subsysnqn": "nqn.2014-08.org.example:disk1",
          "state": "connecting"
        }
      ]
    },
"#;
        assert!(got.starts_with(want_start), "{got}");
        for part in [
            "\"owner\": \"claimed\",\n        \"claimed_by\": \"stas\",",
            "\"result\": \"ok\",\n        \"error\": null",
            "\"name\": \"nvme10\",\n          \"subsysnqn\": \"nqn.2014-08.org.example:disk1\",\n          \"state\": \"gone\"",
            "\"discovery_controller\": null,\n      \"last_discovery\": null,\n      \"next_retry\": null,\n      \"retry_in\": null,\n      \"io_controllers\": []",
        ] {
            assert!(got.contains(part), "{part}\n{got}");
        }
        let mut s = example();
        s.addrs[0].next_retry = Some(NOW - 3);
        s.addrs[0].last.as_mut().unwrap().error = "a\"b\\c\n".into();
        let got = format_json(&s, &[], NOW);
        assert!(got.contains("\"retry_in\": 0,"), "{got}");
        assert!(got.contains(r#""error": "a\"b\\c\n""#), "{got}");
    }

    #[test]
    fn not_running_output() {
        assert_eq!(
            format_not_running("no /x/status", OutputFormat::Normal),
            "nvme-monitor is not running: no /x/status\n"
        );
        assert_eq!(
            format_not_running("no \"/x\"", OutputFormat::Json),
            "{\n  \"running\": false,\n  \"reason\": \"no \\\"/x\\\"\"\n}\n"
        );
    }

    #[test]
    fn options_from_args() {
        let a = crate::cli::Args {
            autoconnect: true,
            dry_run: true,
            owner: "boot".into(),
            prune_grace: 60,
            epcsd_poll_interval: 5,
            ..crate::cli::Args::default()
        };
        let o = Options::from_args(&a);
        assert_eq!(
            o,
            Options {
                autoconnect: true,
                persistent: false,
                keep: false,
                dry_run: true,
                cmdline: false,
                owner: "boot".into(),
                discovery_conf: Some("/etc/nvme/discovery.conf".into()),
                fabrics_conf: Some("/etc/nvme/nvme-fabrics.conf".into()),
                prune_grace: 60,
                epcsd_poll_interval: 5,
            }
        );
        let a = crate::cli::Args {
            no_config: true,
            ..a
        };
        let o = Options::from_args(&a);
        assert_eq!((o.discovery_conf, o.fabrics_conf), (None, None));
    }

    /// A state directory 0700 and a /proc, both under the temporary directory.
    fn tree(tag: &str) -> (std::path::PathBuf, StatusArgs) {
        use std::os::unix::fs::DirBuilderExt;
        let root =
            std::env::temp_dir().join(format!("nvme-monitor-status-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(root.join("state"))
            .unwrap();
        let args = StatusArgs {
            state_dir: root.join("state"),
            sysfs: root.join("sys"),
            procfs: root.join("proc"),
            ..StatusArgs::default()
        };
        (root, args)
    }

    fn fake_process(args: &StatusArgs, pid: u32, comm: &str, exe: Option<&str>) {
        let dir = args.procfs.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        if let Some(exe) = exe {
            std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        }
    }

    #[test]
    fn write_read_remove() {
        use std::os::unix::fs::PermissionsExt;
        let (root, args) = tree("write");
        let dir = &args.state_dir;
        assert_eq!(read(dir).unwrap(), None);
        assert!(!remove(dir).unwrap());
        let text = render(&example());
        write(dir, &text).unwrap();
        assert_eq!(read(dir).unwrap().as_deref(), Some(text.as_str()));
        let mode = std::fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o644);
        assert!(!dir.join(".status.tmp").exists());
        // The handoff state file beside it is a different file.
        assert_eq!(crate::state::read(dir).unwrap(), None);
        assert!(remove(dir).unwrap());
        assert_eq!(read(dir).unwrap(), None);
        // Never written through a symlink planted at the name.
        std::fs::write(root.join("victim"), "v").unwrap();
        std::os::unix::fs::symlink(root.join("victim"), dir.join(FILE_NAME)).unwrap();
        assert!(write(dir, &text).is_err());
        assert!(read(dir).is_err());
        assert_eq!(std::fs::read_to_string(root.join("victim")).unwrap(), "v");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn write_creates_the_state_directory() {
        let (root, args) = tree("create");
        let dir = args.state_dir.join("sub");
        write(&dir, "x").unwrap();
        assert_eq!(read(&dir).unwrap().as_deref(), Some("x"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn finds_a_running_daemon_or_says_why_not() {
        let (root, args) = tree("find");
        let path = args.state_dir.join(FILE_NAME).display().to_string();
        assert_eq!(
            find(&args).unwrap(),
            Found::NotRunning(format!("no {path}"))
        );
        // No state directory at all: the same, and nothing is created.
        let missing = StatusArgs {
            state_dir: root.join("nowhere"),
            ..args.clone()
        };
        assert!(matches!(find(&missing).unwrap(), Found::NotRunning(_)));
        assert!(!root.join("nowhere").exists());

        let mut s = example();
        s.daemon.pid = 4242;
        write(&args.state_dir, &render(&s)).unwrap();
        let stale =
            |what: &str| Found::NotRunning(format!("pid 4242 in {path} {what}: the file is stale"));
        assert_eq!(find(&args).unwrap(), stale("is gone"));
        fake_process(&args, 4242, "bash", None);
        assert_eq!(find(&args).unwrap(), stale("is 'bash', not nvme-monitor"));
        std::fs::remove_dir_all(args.procfs.join("4242")).unwrap();
        fake_process(&args, 4242, "nvme-monitor", None);
        assert_eq!(find(&args).unwrap(), Found::Running(s.clone()));
        // Started through a link of another name, then upgraded: exe still says nvme-monitor.
        std::fs::remove_dir_all(args.procfs.join("4242")).unwrap();
        fake_process(
            &args,
            4242,
            "nvmemon",
            Some("/usr/sbin/nvme-monitor (deleted)"),
        );
        assert_eq!(find(&args).unwrap(), Found::Running(s.clone()));
        std::fs::remove_dir_all(args.procfs.join("4242")).unwrap();
        fake_process(&args, 4242, "\u{1b}]0;x", Some("/usr/bin/nvme-monitor-old"));
        assert_eq!(
            find(&args).unwrap(),
            stale("is '\\u{1b}]0;x', not nvme-monitor")
        );
        // A pid reused by this very command.
        s.daemon.pid = std::process::id();
        fake_process(&args, s.daemon.pid, "nvme-monitor", None);
        write(&args.state_dir, &render(&s)).unwrap();
        let me = std::process::id();
        assert_eq!(
            find(&args).unwrap(),
            Found::NotRunning(format!(
                "pid {me} in {path} is this status command: the file is stale"
            ))
        );
        // A file that cannot be used is an error, naming the file and the line.
        write(&args.state_dir, &render(&s).replace(" pid=", " pid=x")).unwrap();
        let e = find(&args).unwrap_err().to_string();
        assert_eq!(e, format!("unable to read {path}: line 2: bad pid 'x{me}'"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn run_exit_codes_and_output() {
        let (root, args) = tree("run");
        let report = |args: &StatusArgs| {
            let mut out = Vec::new();
            let code = run_to(args, &mut out);
            (code, String::from_utf8(out).unwrap())
        };
        let (code, out) = report(&args);
        assert_eq!(code, EXIT_NOT_RUNNING);
        assert!(out.starts_with("nvme-monitor is not running: no "), "{out}");
        let mut s = example();
        s.daemon.pid = 4243;
        s.addrs[0].dc.as_mut().unwrap().ino = 0;
        write(&args.state_dir, &render(&s)).unwrap();
        let json = StatusArgs {
            output: OutputFormat::Json,
            ..args.clone()
        };
        let (code, out) = report(&json);
        assert_eq!(code, EXIT_NOT_RUNNING);
        assert!(out.starts_with("{\n  \"running\": false,\n  \"reason\": \"pid 4243 "));
        fake_process(&args, 4243, "nvme-monitor", None);
        // sysfs as it is now: nvme0 live, nvme3 gone.
        let nvme0 = args.sysfs.join("class/nvme/nvme0");
        std::fs::create_dir_all(&nvme0).unwrap();
        for (attr, value) in [
            ("transport", "tcp"),
            ("address", "traddr=192.168.1.3,trsvcid=8009"),
            ("subsysnqn", "nqn.2014-08.org.nvmexpress.discovery"),
            ("state", "live"),
        ] {
            std::fs::write(nvme0.join(attr), format!("{value}\n")).unwrap();
        }
        let (code, out) = report(&args);
        assert_eq!(code, crate::cli::EXIT_OK);
        assert!(out.starts_with("nvme-monitor 0.1.0 is running as pid 4243\n"));
        assert!(
            out.contains("  discovery controller  nvme0 (ours): live\n"),
            "{out}"
        );
        assert!(
            out.contains("  I/O controllers       nvme3  gone  "),
            "{out}"
        );
        let (code, out) = report(&json);
        assert_eq!(code, crate::cli::EXIT_OK);
        assert!(out.starts_with("{\n  \"running\": true,\n"), "{out}");
        // A closed stdout is a failure to report, not a panic.
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert_eq!(run_to(&args, &mut Closed), crate::cli::EXIT_FATAL);
        // Another version's file: an error on stderr, nothing on stdout.
        write(&args.state_dir, "nvme-monitor-status 7\n").unwrap();
        assert_eq!(report(&args), (EXIT_NOT_RUNNING, String::new()));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
