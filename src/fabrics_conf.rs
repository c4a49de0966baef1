//! nvme-cli 3's connection config: /etc/nvme/nvme-fabrics.conf and nvme-fabrics.conf.d/*.conf.
//!
//! INI ([`crate::ini`]). Sections:
//!
//! ```text
//! [Host]                           hostnqn, hostid, hostsymname; tunables and security keys
//! [Discovery Controller Defaults]  tunables and security keys for every discovery controller
//! [I/O Controller Defaults]        the same for every subsystem
//! [Discovery Controller]           repeatable; nqn = (default: the well-known discovery NQN)
//! [Subsystem]                      repeatable; nqn = (required)
//! ```
//!
//! An endpoint section (the last two) holds one `controller = transport=tcp;traddr=...;trsvcid=...;
//! host-traddr=...;host-iface=...` line per path; a controller line may carry tunables too, never a
//! security key (one there is reported and left out, the line still counts). Addresses are checked
//! as discovery.conf's are ([`ConnectArgs::into_source`]): what the transport requires and refuses,
//! FC names lower-cased, lengths; a missing port is 8009 (tcp) or 4420 (rdma) for a discovery
//! controller, as nvme-cli assumes, and 4420, the IANA NVMe port, for a subsystem.
//!
//! Tunables (`nr-io-queues nr-write-queues nr-poll-queues queue-size keep-alive-tmo reconnect-delay
//! ctrl-loss-tmo fast-io-fail-tmo tos duplicate-connect disable-sqflow hdr-digest data-digest`) are
//! checked with the command line's ranges and messages; booleans are `1 yes y true t on` and
//! `0 no n false f off`, in any case. Security keys (`tls tls-key tls-key-identity keyring concat
//! kxchap-secret kxchap-ctrl-secret`) are parsed into [`Security`]; secret values never appear in
//! a message or in `Debug` output.
//!
//! Precedence, highest first: the controller line, its endpoint section, `[Host]`, the class's
//! defaults section, the kernel default. `key =` (nothing after `=`) stops the search at its layer:
//! the kernel default, whatever lower layers say.
//!
//! Choices where nvme-cli's documentation is silent:
//! - Files are read in order: the main file, then the drop-ins by name. The defaults sections merge
//!   per key, later files (and later sections) winning. They apply to every endpoint of every file,
//!   wherever they appear: the result does not depend on which file an endpoint is in.
//! - `[Host]` sections of one file merge per key. A drop-in's `[Host]` must set `hostnqn` (else it is
//!   ignored with a warning); a file with a valid `[Host]` replaces the host of earlier files
//!   whole, identity, secrets and tunables together: DH-HMAC-CHAP secrets and TLS identities
//!   belong to one host NQN, and a host ID belongs to its host NQN (see
//!   [`crate::config::HostIdentity::over`]).
//! - The host identity is [`FabricsConf::hostnqn`] and `hostid`, for the caller to rank with the
//!   command line and /etc/nvme; endpoint options carry none. `hostnqn`, `hostid`, `hostsymname`
//!   outside `[Host]`, `nqn` outside an endpoint section and `controller` outside one are warned
//!   about and ignored (they are known keys in the wrong place, likely a mistake).
//! - A `[Subsystem]` without `nqn`, an endpoint section without a controller line and a
//!   controller listed twice (same class, NQN and address) are warnings; the section or the
//!   repeat is left out.
//! - Unknown keys and sections are no warning (nvme-cli adds keys; an older reader stays quiet):
//!   they are listed in [`FabricsConf::ignored`], which [`load`] logs at debug level.
//!
//! # References
//! - nvme-cli Documentation/nvme-fabrics.conf.txt, libnvme/design/CONFIG.md
//! - drivers/nvme/host/fabrics.c `nvmf_parse_options` (the ranges, via the command line's checks)

use std::fmt;
use std::path::Path;

use crate::addr::{Nqn, Transport, TransportAddr};
use crate::cli::UsageError;
use crate::config::{ConnectArgs, DiscoverySource, check_nqn, check_token_value, check_uuid};
use crate::fabrics::DISCOVERY_NQN;
use crate::ini::{self, Item};
use crate::opts::ConnectOpts;

/// Security settings; a later issue hands them to the kernel. `None`: not given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub tls: Option<bool>,
    /// Secret: a TLS PSK in interchange format.
    pub tls_key: Option<String>,
    pub tls_key_identity: Option<String>,
    pub keyring: Option<String>,
    pub concat: Option<bool>,
    /// Secret: the host's DH-HMAC-CHAP secret.
    pub kxchap_secret: Option<String>,
    /// Secret: the controller's DH-HMAC-CHAP secret (bidirectional authentication).
    pub kxchap_ctrl_secret: Option<String>,
}

impl Security {
    /// Nothing asked for.
    pub fn is_empty(&self) -> bool {
        *self == Security::default()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Secrets show as `Some(<redacted>)`, so a `{:?}` in a log line leaks nothing.
impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| Redacted);
        f.debug_struct("Security")
            .field("tls", &self.tls)
            .field("tls_key", &secret(&self.tls_key))
            .field("tls_key_identity", &self.tls_key_identity)
            .field("keyring", &self.keyring)
            .field("concat", &self.concat)
            .field("kxchap_secret", &secret(&self.kxchap_secret))
            .field("kxchap_ctrl_secret", &secret(&self.kxchap_ctrl_secret))
            .finish()
    }
}

/// One path to a discovery controller or a subsystem, with everything that applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfEndpoint {
    pub nqn: String,
    /// `hostnqn` empty: the host's.
    pub addr: TransportAddr,
    /// Final: every layer merged; `None` is the kernel default.
    pub opts: ConnectOpts,
    /// Final: every layer merged.
    pub security: Security,
    /// `FILE:LINE` of the controller line.
    pub source: String,
    /// The security settings of its section and the class's defaults, without `[Host]`'s: what
    /// is this endpoint's own (a `[Subsystem]`'s keys serve its NQN in any discovery log, and
    /// `[Host]`'s must not come with them there).
    pub own_security: Security,
}

impl ConfEndpoint {
    /// A DH-HMAC-CHAP key was set for this endpoint or its class (its section, the class's
    /// defaults section), not only in `[Host]`: for a discovery controller, the key is meant for
    /// it (libnvme sends a host's key to a discovery controller only when configured for it).
    pub fn own_dhchap(&self) -> bool {
        self.own_security.kxchap_secret.is_some() || self.own_security.kxchap_ctrl_secret.is_some()
    }

    /// As a discovery.conf line would give it; `persistent` is the daemon's `-p` to decide. The
    /// NQN is not part of a [`DiscoverySource`]: a discovery controller with a unique NQN is
    /// reached by its address.
    pub fn to_discovery_source(&self) -> DiscoverySource {
        DiscoverySource {
            addr: self.addr,
            opts: self.opts.clone(),
            persistent: false,
            subsystem: Nqn::EMPTY,
            explicit: false,
        }
    }

    /// A `[Subsystem]` path: the subsystem, connected at this address without discovery. `None`
    /// when the NQN does not fit an NQN (longer than 223 bytes).
    pub fn to_direct_source(&self) -> Option<DiscoverySource> {
        Some(DiscoverySource {
            subsystem: Nqn::new(&self.nqn).filter(|n| !n.is_empty())?,
            ..self.to_discovery_source()
        })
    }
}

/// What the files say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FabricsConf {
    pub hostnqn: Option<String>,
    pub hostid: Option<String>,
    pub hostsymname: Option<String>,
    /// `[Host]`'s own security keys.
    pub host_security: Security,
    pub discovery: Vec<ConfEndpoint>,
    pub subsystems: Vec<ConfEndpoint>,
    /// Unknown keys and sections, `FILE:LINE: ...`: for a debug log, not a warning.
    pub ignored: Vec<String>,
}

/// Which value kinds a setting takes.
#[derive(Clone, Copy)]
enum Kind {
    /// An integer in `min..=max`, as the command line checks it.
    Number(i32, i32),
    Bool,
    /// Never shown.
    Secret,
    /// Shown, no control characters.
    Text,
}

/// The settings every layer may hold, by index: tunables, then security keys from [`SECURITY`].
const SETTINGS: [(&str, Kind); 20] = [
    ("nr-io-queues", Kind::Number(1, i32::MAX)),
    ("nr-write-queues", Kind::Number(1, i32::MAX)),
    ("nr-poll-queues", Kind::Number(1, i32::MAX)),
    ("queue-size", Kind::Number(16, 1024)),
    ("keep-alive-tmo", Kind::Number(0, i32::MAX)),
    ("reconnect-delay", Kind::Number(1, i32::MAX)),
    ("ctrl-loss-tmo", Kind::Number(-1, i32::MAX)),
    ("fast-io-fail-tmo", Kind::Number(-1, i32::MAX)),
    ("tos", Kind::Number(-1, 255)),
    ("duplicate-connect", Kind::Bool),
    ("disable-sqflow", Kind::Bool),
    ("hdr-digest", Kind::Bool),
    ("data-digest", Kind::Bool),
    ("tls", Kind::Bool),
    ("tls-key", Kind::Secret),
    ("tls-key-identity", Kind::Text),
    ("keyring", Kind::Text),
    ("concat", Kind::Bool),
    ("kxchap-secret", Kind::Secret),
    ("kxchap-ctrl-secret", Kind::Secret),
];
const SECURITY: usize = 13;
const N: usize = SETTINGS.len();

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Int(i32),
    Bool(bool),
    Text(String),
}

/// What one layer says: `None` nothing (ask the next), `Some(None)` the kernel default.
type Said<T> = Option<Option<T>>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Layer([Said<Value>; N]);

impl Default for Layer {
    fn default() -> Self {
        Layer(std::array::from_fn(|_| None))
    }
}

impl Layer {
    /// `self` where it says something, `lower` elsewhere.
    fn over(mut self, lower: &Layer) -> Layer {
        for (mine, theirs) in self.0.iter_mut().zip(&lower.0) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        self
    }

    /// The value in effect; `None` for the kernel default.
    fn get(&self, i: usize) -> Option<&Value> {
        self.0[i].as_ref()?.as_ref()
    }

    fn int(&self, i: usize) -> Option<i32> {
        match self.get(i) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    fn count(&self, i: usize) -> Option<u32> {
        self.int(i).and_then(|n| u32::try_from(n).ok())
    }

    fn flag(&self, i: usize) -> Option<bool> {
        match self.get(i) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn text(&self, i: usize) -> Option<String> {
        match self.get(i) {
            Some(Value::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn opts(&self) -> ConnectOpts {
        ConnectOpts {
            nr_io_queues: self.count(0),
            nr_write_queues: self.count(1),
            nr_poll_queues: self.count(2),
            queue_size: self.count(3),
            keep_alive_tmo: self.count(4),
            reconnect_delay: self.count(5),
            ctrl_loss_tmo: self.int(6),
            fast_io_fail_tmo: self.int(7),
            // As on the command line: -1 is the transport's default, which is not passing it.
            tos: self.int(8).filter(|&tos| tos >= 0),
            duplicate_connect: self.flag(9).unwrap_or(false),
            disable_sqflow: self.flag(10).unwrap_or(false),
            hdr_digest: self.flag(11).unwrap_or(false),
            data_digest: self.flag(12).unwrap_or(false),
            ..Default::default()
        }
    }

    fn security(&self) -> Security {
        Security {
            tls: self.flag(13),
            tls_key: self.text(14),
            tls_key_identity: self.text(15),
            keyring: self.text(16),
            concat: self.flag(17),
            kxchap_secret: self.text(18),
            kxchap_ctrl_secret: self.text(19),
        }
    }
}

/// A setting's value, or the message for its line (never quoting a secret).
fn parse_value(key: &str, kind: Kind, value: &str) -> Result<Value, String> {
    let invalid = |expected: String| {
        UsageError::InvalidValue {
            option: key.into(),
            value: value.into(),
            expected,
        }
        .to_string()
    };
    match kind {
        Kind::Number(min, max) => {
            // The command line's `number` in cli.rs, which is private there: same parse, same words.
            let n: i32 = value
                .parse()
                .map_err(|_| invalid("expected a number".into()))?;
            if n < min || n > max {
                return Err(invalid(if max == i32::MAX {
                    format!("expected a number of at least {min}")
                } else {
                    format!("expected a number from {min} to {max}")
                }));
            }
            Ok(Value::Int(n))
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "1" | "yes" | "y" | "true" | "t" | "on" => Ok(Value::Bool(true)),
            "0" | "no" | "n" | "false" | "f" | "off" => Ok(Value::Bool(false)),
            _ => Err(invalid(
                "expected 1, yes, y, true, t, on or 0, no, n, false, f, off".into(),
            )),
        },
        // Secrets go into the kernel's option string, split at ',' (base64 may hold '=').
        Kind::Secret if value.bytes().all(|b| b.is_ascii_graphic() && b != b',') => {
            Ok(Value::Text(value.into()))
        }
        Kind::Secret => Err(format!(
            "invalid value for {key}: expected printable ASCII without spaces or ','"
        )),
        Kind::Text if !value.chars().any(char::is_control) => Ok(Value::Text(value.into())),
        Kind::Text => Err(invalid("expected text without control characters".into())),
    }
}

/// A host symbolic name: the NVMe field is 256 bytes; printable, so it can be logged.
fn check_symname(s: &str) -> Result<(), &'static str> {
    if s.len() <= 256 && !s.chars().any(char::is_control) {
        Ok(())
    } else {
        Err("expected at most 256 bytes without control characters")
    }
}

/// An unknown key for a message, if it looks like one: a secret pasted on a line of its own
/// (`DHHC-1:00:...=:`) splits at its `=` into a "key" that must not be logged.
fn quoted(key: &str) -> String {
    let keyish = key.len() <= 32
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if keyish {
        format!("'{key}'")
    } else {
        "(not shown: not a key name)".into()
    }
}

/// discovery.conf's address checks speak of `--traddr`; here the key is `traddr`.
fn in_conf_words(e: UsageError) -> String {
    match e {
        UsageError::Required { option, context } => UsageError::Required {
            option: option.trim_start_matches("--"),
            context,
        },
        UsageError::InvalidValue {
            option,
            value,
            expected,
        } => UsageError::InvalidValue {
            option: option.trim_start_matches("--").into(),
            value,
            expected,
        },
        other => other,
    }
    .to_string()
}

const ENDPOINTS: &str = "[Subsystem] and [Discovery Controller]";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Discovery,
    Io,
}

#[derive(Debug, Clone, Default)]
struct Host {
    hostnqn: Said<String>,
    hostid: Said<String>,
    hostsymname: Said<String>,
    layer: Layer,
}

impl Host {
    fn over(self, lower: Host) -> Host {
        Host {
            hostnqn: self.hostnqn.or(lower.hostnqn),
            hostid: self.hostid.or(lower.hostid),
            hostsymname: self.hostsymname.or(lower.hostsymname),
            layer: self.layer.over(&lower.layer),
        }
    }
}

#[derive(Debug)]
struct Controller {
    source: String,
    addr: TransportAddr,
    layer: Layer,
}

#[derive(Debug)]
struct Endpoint {
    class: Class,
    nqn: Said<String>,
    layer: Layer,
    controllers: Vec<Controller>,
    /// `controller =` lines seen, good or bad.
    lines: usize,
}

/// The section being read.
enum Section {
    /// Before the first header.
    Outside,
    Unknown,
    Host(Host),
    Defaults(Class, Layer),
    Endpoint(Endpoint),
}

/// The state across all files.
#[derive(Default)]
struct Reader {
    host: Host,
    defaults: [Layer; 2],
    /// Endpoint sections read so far, with their NQN.
    endpoints: Vec<(String, Endpoint)>,
    warnings: Vec<String>,
    ignored: Vec<String>,
}

impl Reader {
    fn file(&mut self, text: &str, file: &str, drop_in: bool) {
        let mut file_host: Option<Host> = None;
        let mut section = (0, Section::Outside);
        for token in ini::tokens(text, file) {
            let token = match token {
                Ok(t) => t,
                Err(e) => {
                    self.warnings.push(e.to_string());
                    continue;
                }
            };
            let at = format!("{file}:{}", token.line);
            match token.item {
                Item::Section(name) => {
                    let done = std::mem::replace(&mut section, (token.line, Section::Unknown));
                    self.close(done, file, drop_in, &mut file_host);
                    section.1 = self.open(name, &at);
                }
                Item::KeyValue { key, value } => self.key(&mut section.1, key, value, &at),
            }
        }
        self.close(section, file, drop_in, &mut file_host);
        if let Some(host) = file_host {
            self.host = host;
        }
    }

    fn open(&mut self, name: &str, at: &str) -> Section {
        match name {
            "Host" => Section::Host(Host::default()),
            "Discovery Controller Defaults" => {
                Section::Defaults(Class::Discovery, Layer::default())
            }
            "I/O Controller Defaults" => Section::Defaults(Class::Io, Layer::default()),
            "Discovery Controller" | "Subsystem" => Section::Endpoint(Endpoint {
                class: if name == "Subsystem" {
                    Class::Io
                } else {
                    Class::Discovery
                },
                nqn: None,
                layer: Layer::default(),
                controllers: Vec::new(),
                lines: 0,
            }),
            _ => {
                self.ignored.push(format!(
                    "{at}: unknown section [{}] ignored",
                    name.escape_debug()
                ));
                Section::Unknown
            }
        }
    }

    fn close(
        &mut self,
        (line, section): (usize, Section),
        file: &str,
        drop_in: bool,
        file_host: &mut Option<Host>,
    ) {
        let at = format!("{file}:{line}");
        match section {
            Section::Outside | Section::Unknown => {}
            Section::Host(host) => {
                if drop_in && !matches!(host.hostnqn, Some(Some(_))) {
                    self.warnings.push(format!(
                        "{at}: a [Host] in a drop-in must set hostnqn; this [Host] is ignored"
                    ));
                    return;
                }
                *file_host = Some(host.over(file_host.take().unwrap_or_default()));
            }
            Section::Defaults(class, layer) => {
                let slot = &mut self.defaults[class as usize];
                *slot = layer.over(slot);
            }
            Section::Endpoint(mut endpoint) => {
                let name = match endpoint.class {
                    Class::Discovery => "[Discovery Controller]",
                    Class::Io => "[Subsystem]",
                };
                let nqn = match (&endpoint.nqn, endpoint.class) {
                    (Some(Some(nqn)), _) => nqn.clone(),
                    (_, Class::Discovery) => DISCOVERY_NQN.to_owned(),
                    (_, Class::Io) => {
                        self.warnings.push(format!(
                            "{at}: {name} without nqn; its controllers are not used"
                        ));
                        return;
                    }
                };
                if endpoint.lines == 0 {
                    self.warnings
                        .push(format!("{at}: {name} has no controller line"));
                    return;
                }
                let controllers = std::mem::take(&mut endpoint.controllers);
                for c in controllers {
                    let here = endpoint.controllers.iter().find(|d| d.addr == c.addr);
                    let first = here
                        .map(|d| d.source.as_str())
                        .or_else(|| self.listed(endpoint.class, &nqn, &c.addr));
                    match first {
                        Some(first) => self.warnings.push(format!(
                            "{}: {} of {nqn} is already listed at {first}",
                            c.source, c.addr
                        )),
                        None => endpoint.controllers.push(c),
                    }
                }
                self.endpoints.push((nqn, endpoint));
            }
        }
    }

    fn listed(&self, class: Class, nqn: &str, addr: &TransportAddr) -> Option<&str> {
        self.endpoints
            .iter()
            .filter(|(n, e)| e.class == class && n == nqn)
            .flat_map(|(_, e)| &e.controllers)
            .find(|c| c.addr == *addr)
            .map(|c| c.source.as_str())
    }

    fn key(&mut self, section: &mut Section, key: &str, value: Option<&str>, at: &str) {
        let misplaced = |only: &str| format!("{at}: {key} is only read in {only}; ignored");
        if let Some(i) = SETTINGS.iter().position(|(k, _)| *k == key) {
            let layer = match section {
                Section::Outside => {
                    self.warnings
                        .push(format!("{at}: {key} is outside any section; ignored"));
                    return;
                }
                Section::Unknown => return,
                Section::Host(host) => &mut host.layer,
                Section::Defaults(_, layer) => layer,
                Section::Endpoint(e) => &mut e.layer,
            };
            match value
                .map(|v| parse_value(key, SETTINGS[i].1, v))
                .transpose()
            {
                Ok(v) => layer.0[i] = Some(v),
                Err(e) => self.warnings.push(format!("{at}: {e}")),
            }
            return;
        }
        let check: fn(&str) -> Result<(), &'static str> = match key {
            "hostnqn" | "nqn" => check_nqn,
            "hostid" => check_uuid,
            "hostsymname" => check_symname,
            "controller" => {
                match (section, value) {
                    (Section::Endpoint(e), Some(value)) => {
                        e.lines += 1;
                        if let Some(c) = self.controller(e.class, value, at) {
                            e.controllers.push(c);
                        }
                    }
                    (Section::Endpoint(_), None) => self
                        .warnings
                        .push(format!("{at}: empty controller line; skipped")),
                    (Section::Unknown, _) => {}
                    _ => self.warnings.push(misplaced(ENDPOINTS)),
                }
                return;
            }
            _ => {
                if !matches!(section, Section::Unknown) {
                    self.ignored
                        .push(format!("{at}: unknown key {} ignored", quoted(key)));
                }
                return;
            }
        };
        let slot = match (section, key) {
            (Section::Host(h), "hostnqn") => &mut h.hostnqn,
            (Section::Host(h), "hostid") => &mut h.hostid,
            (Section::Host(h), "hostsymname") => &mut h.hostsymname,
            (Section::Endpoint(e), "nqn") => &mut e.nqn,
            (Section::Unknown, _) => return,
            (_, "nqn") => return self.warnings.push(misplaced(ENDPOINTS)),
            _ => return self.warnings.push(misplaced("[Host]")),
        };
        match value.map(|v| check(v).map(|()| v.to_owned())).transpose() {
            Ok(said) => *slot = Some(said),
            Err(expected) => {
                let e = UsageError::InvalidValue {
                    option: key.into(),
                    value: value.unwrap_or_default().into(),
                    expected: expected.into(),
                };
                self.warnings.push(format!("{at}: {e}"));
            }
        }
    }

    /// One `controller =` line: `key=value;...`. Problems with the address or a tunable skip it.
    fn controller(&mut self, class: Class, value: &str, at: &str) -> Option<Controller> {
        let mut args = ConnectArgs::default();
        let mut layer = Layer::default();
        let mut seen = [false; 5];
        let skip = |why: String| format!("{at}: {why}; controller skipped");
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, v)) = part.split_once('=') else {
                // Not quoted: it could be a secret pasted without its key.
                self.warnings.push(skip(
                    "a field of the controller line is not key=value".into(),
                ));
                return None;
            };
            let (key, v) = (key.trim(), v.trim());
            let v = (!v.is_empty()).then_some(v);
            const ADDRESS: [&str; 5] = [
                "transport",
                "traddr",
                "trsvcid",
                "host-traddr",
                "host-iface",
            ];
            if let Some(i) = ADDRESS.iter().position(|k| *k == key) {
                if std::mem::replace(&mut seen[i], true) {
                    self.warnings.push(skip(format!("{key} is given twice")));
                    return None;
                }
                let Some(v) = v else { continue }; // empty: not given
                let invalid = |expected: &str| {
                    skip(
                        UsageError::InvalidValue {
                            option: key.into(),
                            value: v.into(),
                            expected: expected.into(),
                        }
                        .to_string(),
                    )
                };
                if i == 0 {
                    match Transport::from_name(&v.to_ascii_lowercase()) {
                        Some(t) => args.transport = Some(t),
                        None => {
                            self.warnings
                                .push(invalid("expected rdma, fc, tcp or loop"));
                            return None;
                        }
                    }
                    continue;
                }
                if let Err(expected) = check_token_value(v) {
                    self.warnings.push(invalid(expected));
                    return None;
                }
                let slot = match i {
                    1 => &mut args.traddr,
                    2 => &mut args.trsvcid,
                    3 => &mut args.host_traddr,
                    _ => &mut args.host_iface,
                };
                *slot = Some(v.to_owned());
            } else if let Some(i) = SETTINGS.iter().position(|(k, _)| *k == key) {
                if i >= SECURITY {
                    self.warnings.push(format!(
                        "{at}: {key} is not allowed on a controller line (set it in the section \
                         or in [Host]); ignored"
                    ));
                    continue;
                }
                match v.map(|v| parse_value(key, SETTINGS[i].1, v)).transpose() {
                    Ok(v) => layer.0[i] = Some(v),
                    Err(e) => {
                        self.warnings.push(skip(e));
                        return None;
                    }
                }
            } else if matches!(
                key,
                "hostnqn" | "hostid" | "hostsymname" | "nqn" | "controller"
            ) {
                self.warnings.push(format!(
                    "{at}: {key} is not read on a controller line; ignored"
                ));
            } else {
                self.ignored.push(format!(
                    "{at}: unknown controller field {} ignored",
                    quoted(key)
                ));
            }
        }
        // nvme-cli's discovery port default comes with into_source; an I/O controller's is 4420.
        if class == Class::Io
            && args.trsvcid.is_none()
            && matches!(args.transport, Some(Transport::Tcp | Transport::Rdma))
        {
            args.trsvcid = Some("4420".into());
        }
        match args.into_source() {
            Ok(source) => Some(Controller {
                source: at.to_owned(),
                addr: source.addr,
                layer,
            }),
            Err(e) => {
                self.warnings.push(skip(in_conf_words(e)));
                None
            }
        }
    }

    fn finish(self) -> (FabricsConf, Vec<String>) {
        let host = &self.host;
        let mut conf = FabricsConf {
            hostnqn: host.hostnqn.clone().flatten(),
            hostid: host.hostid.clone().flatten(),
            hostsymname: host.hostsymname.clone().flatten(),
            host_security: host.layer.security(),
            ignored: self.ignored,
            ..Default::default()
        };
        for (nqn, e) in self.endpoints {
            let without_host = e
                .layer
                .clone()
                .over(&self.defaults[e.class as usize])
                .security();
            let below = e
                .layer
                .over(&host.layer)
                .over(&self.defaults[e.class as usize]);
            for c in e.controllers {
                let layer = c.layer.over(&below);
                let endpoint = ConfEndpoint {
                    nqn: nqn.clone(),
                    addr: c.addr,
                    opts: layer.opts(),
                    security: layer.security(),
                    source: c.source,
                    own_security: without_host.clone(),
                };
                match e.class {
                    Class::Discovery => conf.discovery.push(endpoint),
                    Class::Io => conf.subsystems.push(endpoint),
                }
            }
        }
        (conf, self.warnings)
    }
}

/// Parse `(name, text)` pairs: the main file first (empty text if it does not exist), then the
/// drop-ins in order. The warnings are `FILE:LINE: problem`; each bad line is left out.
pub fn parse_files(files: &[(String, String)]) -> (FabricsConf, Vec<String>) {
    let mut reader = Reader::default();
    for (i, (name, text)) in files.iter().enumerate() {
        reader.file(text, name, i > 0);
    }
    reader.finish()
}

/// Read `main` and `main.d/*.conf` (by name). Absent files are no error; an unreadable or
/// non-UTF-8 one is a warning and counts as empty. Unknown keys are logged at debug level.
pub fn load(main: &Path) -> (FabricsConf, Vec<String>) {
    let mut warnings = Vec::new();
    let mut files = Vec::new();
    let mut read = |path: &Path, files: &mut Vec<(String, String)>| match ini::read_file(path) {
        Ok(text) => files.push((path.display().to_string(), text.unwrap_or_default())),
        Err(e) => warnings.push(e),
    };
    read(main, &mut files);
    if files.is_empty() {
        // The first file is the main one, whose [Host] needs no hostnqn.
        files.push((main.display().to_string(), String::new()));
    }
    let dir = ini::drop_in_dir(main);
    match ini::drop_ins(&dir) {
        Ok(paths) => paths.iter().for_each(|p| read(p, &mut files)),
        Err(e) => warnings
            .push(crate::error::Error::io(format!("list {}", dir.display()), &e).to_string()),
    }
    let (conf, w) = parse_files(&files);
    for note in &conf.ignored {
        debug!("{note}");
    }
    warnings.extend(w);
    (conf, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = include_str!("../tests/data/fabrics_conf/nvme-fabrics.conf");
    const ARRAY2: &str =
        include_str!("../tests/data/fabrics_conf/nvme-fabrics.conf.d/10-array2.conf");
    const BAD: &str = include_str!("../tests/data/fabrics_conf/bad.conf");

    const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:5f8ea9b4-1d42-4b5c-9b0e-3a4d6c7e8f90";

    fn files(texts: &[&str]) -> Vec<(String, String)> {
        let names = ["main", "d/10.conf", "d/20.conf"];
        texts
            .iter()
            .zip(names)
            .map(|(t, n)| (n.to_owned(), (*t).to_owned()))
            .collect()
    }

    /// Parse, expecting no warning.
    fn clean(texts: &[&str]) -> FabricsConf {
        let (conf, warnings) = parse_files(&files(texts));
        assert_eq!(warnings, Vec::<String>::new());
        conf
    }

    fn paths(endpoints: &[ConfEndpoint]) -> Vec<String> {
        endpoints
            .iter()
            .map(|e| format!("{} {} {}", e.source, e.nqn, e.addr))
            .collect()
    }

    /// The one subsystem of `[Subsystem]` + `section` + `controller = ...;line`, over `host` and
    /// `defaults` sections.
    fn layered(defaults: &str, host: &str, section: &str, line: &str) -> ConnectOpts {
        let text = format!(
            "[I/O Controller Defaults]\n{defaults}\n[Host]\n{host}\n[Subsystem]\nnqn = nqn.s\n\
             {section}\ncontroller = transport=tcp;traddr=10.0.0.1;{line}\n"
        );
        let conf = clean(&[&text]);
        assert_eq!(conf.subsystems.len(), 1);
        conf.subsystems[0].opts.clone()
    }

    #[test]
    fn example_files() {
        let conf = clean(&[MAIN, ARRAY2]);
        assert_eq!(conf.hostnqn.as_deref(), Some(HOSTNQN));
        assert_eq!(
            conf.hostid.as_deref(),
            Some("5f8ea9b4-1d42-4b5c-9b0e-3a4d6c7e8f90")
        );
        assert_eq!(conf.hostsymname.as_deref(), Some("db-server-07"));
        assert!(conf.host_security.kxchap_secret.is_some());
        assert!(conf.ignored.is_empty());
        let d = "nqn.2014-08.org.nvmexpress.discovery";
        assert_eq!(
            paths(&conf.discovery),
            [
                format!("main:28 {d} tcp traddr=192.168.10.5,trsvcid=8009,host_iface=eth1"),
                format!("main:29 {d} tcp traddr=192.168.20.5,trsvcid=8009,host_iface=eth2"),
                "main:34 nqn.1992-08.com.example:sn.4f3e0bd2:discovery \
                 tcp traddr=fd00:10::5,trsvcid=8009"
                    .into(),
            ]
        );
        assert_eq!(
            paths(&conf.subsystems),
            [
                "main:40 nqn.2014-08.com.example:array1 \
                 tcp traddr=192.168.10.20,trsvcid=4420,host_iface=eth1",
                "main:41 nqn.2014-08.com.example:array1 \
                 tcp traddr=192.168.20.20,trsvcid=4420,host_iface=eth2",
                "main:49 nqn.2014-08.com.example:array3 \
                 fc traddr=nn-0x200400a098d85236:pn-0x201400a098d85236,\
                 host_traddr=nn-0x200000109b7db455:pn-0x100000109b7db455",
                "d/10.conf:12 nqn.2014-08.com.example:array2 tcp traddr=10.0.0.9,trsvcid=4420",
                "d/10.conf:14 nqn.2014-08.com.example:array2 tcp traddr=10.0.0.10,trsvcid=4420",
            ]
        );
        let dc = ConnectOpts {
            keep_alive_tmo: Some(30),
            reconnect_delay: Some(5),
            ..Default::default()
        };
        assert!(conf.discovery.iter().all(|e| e.opts == dc));
        let io = ConnectOpts {
            ctrl_loss_tmo: Some(-1),
            nr_io_queues: Some(8),
            // From the drop-in's defaults: they apply to the main file's subsystems too.
            reconnect_delay: Some(10),
            hdr_digest: true,
            data_digest: true,
            ..Default::default()
        };
        let s = &conf.subsystems;
        assert_eq!(
            s[0].opts,
            ConnectOpts {
                queue_size: Some(128),
                ..io.clone()
            }
        );
        assert_eq!(
            s[1].opts,
            ConnectOpts {
                queue_size: Some(128),
                nr_io_queues: Some(4),
                data_digest: false,
                ..io.clone()
            }
        );
        assert_eq!(
            s[2].opts,
            ConnectOpts {
                hdr_digest: false,
                data_digest: false,
                ..io.clone()
            }
        );
        assert_eq!(s[3].opts, io);
        assert_eq!(s[4].opts.ctrl_loss_tmo, Some(600));
        // [Host]'s secret reaches every endpoint; the TLS settings only array2's.
        assert!(s.iter().all(|e| e.security.kxchap_secret.is_some()));
        assert_eq!(s[3].security.tls, Some(true));
        assert_eq!(s[3].security.keyring.as_deref(), Some(".nvme"));
        assert!(
            s[3].security
                .tls_key_identity
                .as_deref()
                .is_some_and(|i| i.starts_with("NVMe0R01 nqn."))
        );
        assert_eq!(s[0].security.tls, None);
    }

    #[test]
    fn bad_lines_are_reported_and_left_out() {
        let (conf, warnings) = parse_files(&files(&["", BAD]));
        let f = "d/10.conf";
        let skipped = "; controller skipped";
        let expected = [
            format!("{f}:2: nr-io-queues is outside any section; ignored"),
            format!("{f}:3: a [Host] in a drop-in must set hostnqn; this [Host] is ignored"),
            format!("{f}:6: invalid value '8' for queue-size: expected a number from 16 to 1024"),
            format!("{f}:7: invalid value '0' for nr-io-queues: expected a number of at least 1"),
            format!(
                "{f}:8: invalid value '-5' for keep-alive-tmo: expected a number of at least 0"
            ),
            format!("{f}:9: invalid value '256' for tos: expected a number from -1 to 255"),
            format!(
                "{f}:10: invalid value 'maybe' for hdr-digest: \
                 expected 1, yes, y, true, t, on or 0, no, n, false, f, off"
            ),
            format!("{f}:11: hostnqn is only read in [Host]; ignored"),
            format!("{f}:12: nqn is only read in [Subsystem] and [Discovery Controller]; ignored"),
            format!(
                "{f}:13: controller is only read in [Subsystem] and [Discovery Controller]; ignored"
            ),
            format!(
                "{f}:14: invalid value for kxchap-secret: expected printable ASCII without spaces or ','"
            ),
            format!("{f}:15: [Subsystem] without nqn; its controllers are not used"),
            format!(
                "{f}:18: invalid value 'host-1' for nqn: \
                 expected an NQN starting with 'nqn.', at most 223 bytes"
            ),
            format!("{f}:20: traddr is required for tcp{skipped}"),
            format!(
                "{f}:21: invalid value 'udp' for transport: expected rdma, fc, tcp or loop{skipped}"
            ),
            format!(
                "{f}:22: invalid value 'http' for trsvcid: \
                 expected a port number from 1 to 65535{skipped}"
            ),
            format!(
                "{f}:23: invalid value 'ib0' for host-iface: not used by the rdma transport{skipped}"
            ),
            format!("{f}:24: host-traddr is required for fc{skipped}"),
            format!("{f}:25: traddr is given twice{skipped}"),
            format!(
                "{f}:26: invalid value '2048' for queue-size: \
                 expected a number from 16 to 1024{skipped}"
            ),
            format!("{f}:27: a field of the controller line is not key=value{skipped}"),
            format!(
                "{f}:28: kxchap-secret is not allowed on a controller line \
                 (set it in the section or in [Host]); ignored"
            ),
            format!("{f}:30: empty controller line; skipped"),
            format!(
                "{f}:29: tcp traddr=10.0.0.1,trsvcid=4420 of nqn.2014-08.com.example:array9 \
                 is already listed at {f}:28"
            ),
            format!("{f}:31: [Discovery Controller] has no controller line"),
            format!("{f}:35: nqn is not read on a controller line; ignored"),
            format!("{f}:37: a section header is '[name]' alone on its line"),
            format!(
                "{f}:36: tcp traddr=192.168.1.3,trsvcid=8009 of nqn.2014-08.org.nvmexpress.discovery \
                 is already listed at {f}:35"
            ),
        ];
        assert_eq!(warnings, expected);
        for secret in ["not,allowed", "pasted", "c2VjcmV0"] {
            assert!(!warnings.iter().any(|w| w.contains(secret)), "{secret}");
        }
        assert_eq!(
            paths(&conf.subsystems),
            [format!(
                "{f}:28 nqn.2014-08.com.example:array9 tcp traddr=10.0.0.1,trsvcid=4420"
            )]
        );
        // The secret on the controller line was left out, not used.
        assert!(conf.subsystems[0].security.is_empty());
        assert_eq!(
            paths(&conf.discovery),
            [format!(
                "{f}:35 nqn.2014-08.org.nvmexpress.discovery tcp traddr=192.168.1.3,trsvcid=8009"
            )]
        );
        assert_eq!(
            conf.ignored,
            [
                format!("{f}:32: unknown section [Frobnicator] ignored"),
                format!("{f}:35: unknown controller field 'future-knob' ignored"),
            ]
        );
        // Nothing from the defaults section made it: every value there was bad.
        assert_eq!(conf.subsystems[0].opts, ConnectOpts::default());
    }

    #[test]
    fn each_layer_wins_over_the_ones_below() {
        let q = |n: u32| Some(n);
        let (d, h, s, l) = (
            "queue-size = 16",
            "queue-size = 32",
            "queue-size = 64",
            "queue-size=128",
        );
        assert_eq!(layered(d, h, s, l).queue_size, q(128));
        assert_eq!(layered(d, h, s, "").queue_size, q(64));
        assert_eq!(layered(d, h, "", "").queue_size, q(32));
        assert_eq!(layered(d, "", "", "").queue_size, q(16));
        assert_eq!(layered("", "", "", "").queue_size, None);
        // The order of keys inside a section does not matter: a section key after its
        // controller lines still applies to them.
        let text = "[Subsystem]\nnqn = nqn.s\ncontroller = transport=tcp;traddr=h\ntos = 8\n";
        assert_eq!(clean(&[text]).subsystems[0].opts.tos, Some(8));
    }

    #[test]
    fn empty_value_is_the_kernel_default_whatever_lies_below() {
        let (d, h) = ("queue-size = 16\nhdr-digest = on", "queue-size = 32");
        let o = layered(d, h, "queue-size =\nhdr-digest =", "");
        assert_eq!((o.queue_size, o.hdr_digest), (None, false));
        let o = layered(d, h, "queue-size = 64", "queue-size=;hdr-digest=");
        assert_eq!((o.queue_size, o.hdr_digest), (None, false));
        let o = layered(d, "queue-size =", "", "");
        assert_eq!(o.queue_size, None);
        assert!(o.hdr_digest, "a reset is per key");
        // A reset in a later file's defaults section resets what an earlier file's said.
        let a = "[I/O Controller Defaults]\nnr-io-queues = 4\n[Subsystem]\nnqn = nqn.s\n\
                 controller = transport=tcp;traddr=h\n";
        let b = "[I/O Controller Defaults]\nnr-io-queues =\n";
        assert_eq!(clean(&[a]).subsystems[0].opts.nr_io_queues, Some(4));
        assert_eq!(clean(&[a, b]).subsystems[0].opts.nr_io_queues, None);
    }

    #[test]
    fn the_class_picks_its_defaults_section() {
        let text = "[Discovery Controller Defaults]\nkeep-alive-tmo = 30\n\
                    [I/O Controller Defaults]\nkeep-alive-tmo = 5\n\
                    [Discovery Controller]\ncontroller = transport=tcp;traddr=h\n\
                    [Subsystem]\nnqn = nqn.s\ncontroller = transport=tcp;traddr=h\n";
        let conf = clean(&[text]);
        assert_eq!(conf.discovery[0].opts.keep_alive_tmo, Some(30));
        assert_eq!(conf.subsystems[0].opts.keep_alive_tmo, Some(5));
        // The same address in both classes is no repeat; their default ports differ anyway.
        assert_eq!(conf.discovery[0].addr.trsvcid.as_str(), "8009");
        assert_eq!(conf.subsystems[0].addr.trsvcid.as_str(), "4420");
    }

    #[test]
    fn booleans() {
        for yes in ["1", "yes", "y", "true", "t", "on", "YES", "True"] {
            let o = layered(
                "",
                "",
                &format!("duplicate-connect = {yes}"),
                &format!("disable-sqflow={yes}"),
            );
            assert!(o.duplicate_connect && o.disable_sqflow, "{yes}");
        }
        for no in ["0", "no", "n", "false", "f", "off", "OFF"] {
            let o = layered(
                "hdr-digest = 1\ndata-digest = 1",
                "",
                &format!("hdr-digest = {no}"),
                &format!("data-digest={no}"),
            );
            assert!(!o.hdr_digest && !o.data_digest, "{no}");
        }
    }

    /// Every tunable takes what the command line takes, gives the same value and refuses
    /// the rest in the same words.
    #[test]
    fn the_command_line_ranges() {
        let values = [
            "-2",
            "-1",
            "0",
            "1",
            "15",
            "16",
            "255",
            "256",
            "1024",
            "1025",
            "2147483647",
            "2147483648",
            "99999999999",
            "x",
            "",
        ];
        for (key, kind) in &SETTINGS[..SECURITY] {
            if matches!(kind, Kind::Bool) {
                continue;
            }
            for v in values.iter().filter(|v| !v.is_empty()) {
                let cli = crate::cli::parse([std::ffi::OsString::from(format!("--{key}={v}"))]);
                let text = format!(
                    "[Subsystem]\nnqn = nqn.s\n{key} = {v}\ncontroller = transport=tcp;traddr=h\n"
                );
                let (conf, warnings) = parse_files(&files(&[&text]));
                match cli {
                    Ok(crate::cli::Command::Run(args)) => {
                        assert_eq!(warnings, Vec::<String>::new(), "{key}={v}");
                        assert_eq!(conf.subsystems[0].opts, args.opts, "{key}={v}");
                    }
                    Err(e) => {
                        let e = e.to_string();
                        let want = e.split_once(": ").map(|(_, why)| why).unwrap_or(&e);
                        assert_eq!(warnings.len(), 1, "{key}={v}");
                        assert!(
                            warnings[0].ends_with(&format!("for {key}: {want}")),
                            "{} / {e}",
                            warnings[0]
                        );
                    }
                    Ok(other) => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn addresses_are_checked_like_discovery_conf() {
        let one = |line: &str| {
            let text = format!("[Subsystem]\nnqn = nqn.s\ncontroller = {line}\n");
            let (conf, warnings) = parse_files(&files(&[&text]));
            match conf.subsystems.first() {
                Some(e) => Ok(e.addr.to_string()),
                None => Err(warnings.join("\n")),
            }
        };
        assert_eq!(
            one("transport=TCP;traddr=h"),
            Ok("tcp traddr=h,trsvcid=4420".into())
        );
        assert_eq!(
            one("transport=rdma;traddr=h"),
            Ok("rdma traddr=h,trsvcid=4420".into())
        );
        assert_eq!(
            one(" transport = tcp ; traddr = h ; host-iface = ; host-traddr=none;"),
            Ok("tcp traddr=h,trsvcid=4420".into()),
            "spaces around fields, an empty field is not given, none is unset"
        );
        assert_eq!(one("transport=loop"), Ok("loop traddr=none".into()));
        assert_eq!(
            one("transport=loop;trsvcid=1"),
            Err(
                "main:3: invalid value '1' for trsvcid: not used by the loop transport; \
                 controller skipped"
                    .into()
            )
        );
        assert_eq!(
            one("transport=tcp;traddr=a,b"),
            Err("main:3: invalid value 'a,b' for traddr: \
                 expected printable ASCII without spaces, ',' or '='; controller skipped"
                .into())
        );
        assert_eq!(
            one(&format!("transport=tcp;traddr={}", "x".repeat(300))),
            Err(format!(
                "main:3: invalid value '{}' for traddr: expected at most 256 bytes; controller skipped",
                "x".repeat(300)
            ))
        );
        assert_eq!(
            one("traddr=h"),
            Err("main:3: transport is required; controller skipped".into())
        );
    }

    #[test]
    fn secrets_never_show() {
        let secrets = [
            "DHHC-1:00:aG9zdCBzZWNyZXQ=:",
            "DHHC-1:00:Y3RybCBzZWNyZXQ=:",
            "NVMeTLSkey-1:01:cHNrIHNlY3JldA==:",
        ];
        let text = format!(
            "[Host]\nkxchap-secret = {}\n[Subsystem]\nnqn = nqn.s\nkxchap-ctrl-secret = {}\n\
             tls-key = {}\nconcat = yes\ncontroller = transport=tcp;traddr=h\n\
             controller = transport=tcp;traddr=i;tls-key={}\n\
             [Discovery Controller]\ncontroller = transport=tcp;traddr=j;DHHC-1:00:{}\n\
             [Host]\ntls-key = bad,{}\n",
            secrets[0], secrets[1], secrets[2], secrets[2], secrets[0], secrets[1]
        );
        let (conf, warnings) = parse_files(&files(&[&text]));
        let s = &conf.subsystems;
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].security.kxchap_secret.as_deref(), Some(secrets[0]));
        assert_eq!(
            s[0].security.kxchap_ctrl_secret.as_deref(),
            Some(secrets[1])
        );
        assert_eq!(s[0].security.tls_key.as_deref(), Some(secrets[2]));
        assert_eq!(s[0].security.concat, Some(true));
        assert_eq!(
            s[1].security, s[0].security,
            "the line's tls-key was left out"
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(
            conf.ignored,
            ["main:11: unknown controller field (not shown: not a key name) ignored"]
        );
        let shown = format!("{conf:?} {warnings:?}");
        assert!(shown.contains("kxchap_secret: Some(<redacted>)"), "{shown}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(Security::default().is_empty() && !s[0].security.is_empty());
    }

    #[test]
    fn host_identity_and_drop_ins() {
        let main = format!(
            "[Host]\nhostnqn = {HOSTNQN}\n[Host]\nhostid = 5f8ea9b4-1d42-4b5c-9b0e-3a4d6c7e8f90\n\
             kxchap-secret = DHHC-1:00:a:\nnr-io-queues = 2\n\
             [Subsystem]\nnqn = nqn.s\ncontroller = transport=tcp;traddr=h\n"
        );
        let conf = clean(&[&main]);
        assert_eq!(conf.hostnqn.as_deref(), Some(HOSTNQN));
        assert!(conf.hostid.is_some(), "[Host] sections of one file merge");
        assert_eq!(
            conf.subsystems[0].opts.nr_io_queues,
            Some(2),
            "[Host] tunables apply"
        );
        assert_eq!(
            conf.subsystems[0].opts.hostnqn, None,
            "the identity stays the host's"
        );

        // A drop-in's [Host] without hostnqn is ignored: the main file's host stays whole.
        let (conf2, warnings) = parse_files(&files(&[
            &main,
            "[Host]\nhostid = 00000000-0000-0000-0000-000000000000\n",
        ]));
        assert_eq!(
            warnings,
            ["d/10.conf:1: a [Host] in a drop-in must set hostnqn; this [Host] is ignored"]
        );
        assert_eq!(conf2, conf);
        // `hostnqn =` does not set one either.
        let (_, warnings) = parse_files(&files(&[&main, "[Host]\nhostnqn =\n"]));
        assert_eq!(warnings.len(), 1);

        // One with hostnqn replaces the host whole: no host ID, secret or tunable of the other.
        let conf = clean(&[
            &main,
            "[Host]\nhostnqn = nqn.2014-08.org.nvmexpress:uuid:other\n",
        ]);
        assert_eq!(
            conf.hostnqn.as_deref(),
            Some("nqn.2014-08.org.nvmexpress:uuid:other")
        );
        assert_eq!(
            (conf.hostid, conf.host_security.kxchap_secret),
            (None, None)
        );
        assert_eq!(conf.subsystems[0].opts.nr_io_queues, None);

        // The main file's [Host] needs no hostnqn; bad values are reported.
        let (conf, warnings) =
            parse_files(&files(&["[Host]\nhostid = 1234\nhostsymname = web 1\n"]));
        assert_eq!(
            warnings,
            [
                "main:2: invalid value '1234' for hostid: expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            ]
        );
        assert_eq!(
            (conf.hostid, conf.hostsymname.as_deref()),
            (None, Some("web 1"))
        );
    }

    #[test]
    fn unknown_keys_are_noted_not_warned() {
        let text = "[Host]\nfuture = 1\n[Subsystem]\nnqn = nqn.s\nHostNQN = x\n\
                    controller = transport=tcp;traddr=h;fast-path=1\n[Other]\nwhatever = 1\nhostnqn = x\n";
        let conf = clean(&[text]);
        assert_eq!(
            conf.ignored,
            [
                "main:2: unknown key 'future' ignored",
                "main:5: unknown key 'HostNQN' ignored",
                "main:6: unknown controller field 'fast-path' ignored",
                "main:7: unknown section [Other] ignored",
            ]
        );
        assert_eq!(conf.subsystems.len(), 1);
    }

    #[test]
    fn discovery_source() {
        let text = "[Discovery Controller]\nnqn = nqn.2014-08.com.example:dc\nkeep-alive-tmo = 15\n\
                    controller = transport=tcp;traddr=10.0.0.5;host-iface=eth0\n";
        let conf = clean(&[text]);
        let e = &conf.discovery[0];
        assert_eq!(e.nqn, "nqn.2014-08.com.example:dc");
        let d = e.to_discovery_source();
        assert_eq!(
            d.addr.to_string(),
            "tcp traddr=10.0.0.5,trsvcid=8009,host_iface=eth0"
        );
        assert_eq!(d.opts.keep_alive_tmo, Some(15));
        assert!(!d.persistent);
    }

    #[test]
    fn load_reads_main_and_sorted_drop_ins() {
        let dir = std::env::temp_dir().join(format!("nvme-monitor-fconf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("nvme-fabrics.conf");
        assert_eq!(load(&main), (FabricsConf::default(), vec![]));

        let d = dir.join("nvme-fabrics.conf.d");
        std::fs::create_dir(&d).unwrap();
        let sub = |traddr: &str| {
            format!("[Subsystem]\nnqn = nqn.s\ncontroller = transport=tcp;traddr={traddr}\n")
        };
        std::fs::write(d.join("3-b.conf"), sub("10.0.0.3")).unwrap();
        std::fs::write(d.join("20-a.conf"), sub("10.0.0.2")).unwrap();
        std::fs::write(d.join("30-latin1.conf"), b"# caf\xe9\n").unwrap();
        // Without a main file the first drop-in is still a drop-in.
        std::fs::write(
            d.join("40-host.conf"),
            "[Host]\nhostid = 5f8ea9b4-1d42-4b5c-9b0e-3a4d6c7e8f90\n",
        )
        .unwrap();
        let (conf, warnings) = load(&main);
        let traddrs: Vec<&str> = conf
            .subsystems
            .iter()
            .map(|e| e.addr.traddr.as_str())
            .collect();
        assert_eq!(traddrs, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            warnings,
            [
                format!(
                    "unable to read {}: not UTF-8",
                    d.join("30-latin1.conf").display()
                ),
                format!(
                    "{}:1: a [Host] in a drop-in must set hostnqn; this [Host] is ignored",
                    d.join("40-host.conf").display()
                ),
            ]
        );
        std::fs::write(&main, sub("10.0.0.1")).unwrap();
        let (conf, _) = load(&main);
        assert_eq!(conf.subsystems[0].source, format!("{}:3", main.display()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
