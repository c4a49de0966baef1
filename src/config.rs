//! discovery.conf and the host identity files in /etc/nvme.
//!
//! A discovery.conf line is an nvme-cli `connect-all` argument list. It goes through the command
//! line's own option parser ([`crate::cli::parse_connect_args`]), so every option is spelled, checked
//! and reported the same way in both places. Values that reach the kernel are checked here, once, for
//! the command line, discovery.conf and rd.nvmf.discover alike.
//!
//! # References
//! - nvme-cli fabrics.c `discover_from_conf_file` (one argument list per line, `#` comments)
//! - drivers/nvme/host/fabrics.c `nvmf_parse_options` (hostnqn < 224 bytes, hostid via uuid_parse)
//! - drivers/nvme/host/{tcp,rdma,fc}.c and target/loop.c (`required_opts`, `allowed_opts`)
//! - drivers/nvme/host/fc.c `nvme_fc_parse_traddr` (`nn-0x<16 hex>:pn-0x<16 hex>`)

use std::path::Path;

use crate::addr::{NQN_MAX, Nqn, Transport, TransportAddr};
use crate::cli::UsageError;
use crate::opts::ConnectOpts;

/// A discovery controller to reach, from discovery.conf, the command line or rd.nvmf.discover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySource {
    /// `addr.hostnqn` is the source's own `--hostnqn`, empty for the daemon's default.
    pub addr: TransportAddr,
    /// Options given with this source; unset ones come from the command line (`ConnectOpts::or`).
    pub opts: ConnectOpts,
    pub persistent: bool,
    /// Empty: a discovery controller's address. Otherwise an NVM subsystem to connect at `addr`
    /// directly, without discovery (nvme-fabrics.conf `[Subsystem]`).
    pub subsystem: Nqn,
    /// Named on our command line (`-t/-a/-s`): an explicit order, which nvme-cli 3's exclusion
    /// list does not stop (what its log enumerates is still checked). Lines of a file or of the
    /// kernel command line are checked.
    pub explicit: bool,
}

/// connect-all options as given, before they are checked against each other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectArgs {
    pub transport: Option<Transport>,
    pub traddr: Option<String>,
    pub trsvcid: Option<String>,
    pub host_traddr: Option<String>,
    pub host_iface: Option<String>,
    pub opts: ConnectOpts,
    pub persistent: bool,
}

impl ConnectArgs {
    /// Was any address option given (so the caller meant to name a discovery controller)?
    pub fn has_address(&self) -> bool {
        self.transport.is_some()
            || self.traddr.is_some()
            || self.trsvcid.is_some()
            || self.host_traddr.is_some()
            || self.host_iface.is_some()
    }

    /// Check the address options against the transport, as the kernel's transport drivers do, and
    /// fill in the discovery service port nvme-cli assumes.
    pub fn into_source(self) -> Result<DiscoverySource, UsageError> {
        let transport = self.transport.ok_or(UsageError::Required {
            option: "--transport",
            context: None,
        })?;
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(crate::addr::unset_to_empty)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (mut traddr, mut host_traddr) = (given(&self.traddr), given(&self.host_traddr));
        let (trsvcid, host_iface) = (given(&self.trsvcid), given(&self.host_iface));
        let need = |option: &'static str| UsageError::Required {
            option,
            context: Some(format!("for {transport}")),
        };
        let unused = |option: &'static str, value: &Option<String>| match value {
            Some(v) => Err(UsageError::InvalidValue {
                option: option.into(),
                value: v.clone(),
                expected: not_used_by(transport).into(),
            }),
            None => Ok(()),
        };
        match transport {
            Transport::Tcp | Transport::Rdma => {
                if traddr.is_none() {
                    return Err(need("--traddr"));
                }
                if transport == Transport::Rdma {
                    unused("--host-iface", &host_iface)?;
                }
            }
            Transport::Fc => {
                unused("--trsvcid", &trsvcid)?;
                unused("--host-iface", &host_iface)?;
                traddr = Some(fc_addr(
                    "--traddr",
                    traddr.ok_or_else(|| need("--traddr"))?,
                )?);
                let host = host_traddr.ok_or_else(|| need("--host-traddr"))?;
                host_traddr = Some(fc_addr("--host-traddr", host)?);
            }
            Transport::Loop => {
                unused("--trsvcid", &trsvcid)?;
                unused("--host-traddr", &host_traddr)?;
                unused("--host-iface", &host_iface)?;
            }
        }
        let trsvcid = match trsvcid {
            Some(port) => {
                check_port(&port).map_err(|expected| UsageError::InvalidValue {
                    option: "--trsvcid".into(),
                    value: port.clone(),
                    expected: expected.into(),
                })?;
                Some(port)
            }
            None => transport.default_discovery_trsvcid().map(str::to_owned),
        };
        let mut addr = TransportAddr::new(
            transport,
            traddr.as_deref().unwrap_or(""),
            trsvcid.as_deref().unwrap_or(""),
            host_traddr.as_deref().unwrap_or(""),
            host_iface.as_deref().unwrap_or(""),
        )
        .map_err(|field| {
            let (option, value, expected) = match field {
                "traddr" => ("--traddr", &traddr, "expected at most 256 bytes"),
                "trsvcid" => ("--trsvcid", &trsvcid, "expected at most 32 bytes"),
                "host_traddr" => ("--host-traddr", &host_traddr, "expected at most 64 bytes"),
                _ => ("--host-iface", &host_iface, "expected at most 15 bytes"),
            };
            UsageError::InvalidValue {
                option: option.into(),
                value: value.clone().unwrap_or_default(),
                expected: expected.into(),
            }
        })?;
        if let Some(nqn) = &self.opts.hostnqn {
            addr.hostnqn = Nqn::new(nqn).unwrap_or_default();
        }
        Ok(DiscoverySource {
            addr,
            opts: self.opts,
            persistent: self.persistent,
            subsystem: Nqn::EMPTY,
            explicit: false,
        })
    }
}

fn not_used_by(transport: Transport) -> &'static str {
    match transport {
        Transport::Rdma => "not used by the rdma transport",
        Transport::Fc => "not used by the fc transport",
        Transport::Tcp => "not used by the tcp transport",
        Transport::Loop => "not used by the loop transport",
    }
}

/// An FC address, lower-cased so that it compares equal to the kernel's `NVMEFC_TRADDR` uevents.
fn fc_addr(option: &'static str, value: String) -> Result<String, UsageError> {
    match check_fc_addr(&value) {
        Ok(()) => Ok(value.to_ascii_lowercase()),
        Err(expected) => Err(UsageError::InvalidValue {
            option: option.into(),
            value,
            expected: expected.into(),
        }),
    }
}

/// Can `s` be a value in a /dev/nvme-fabrics option string without smuggling in another option?
pub fn check_token_value(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("expected a non-empty value");
    }
    if s.bytes()
        .all(|b| b.is_ascii_graphic() && b != b',' && b != b'=')
    {
        Ok(())
    } else {
        Err("expected printable ASCII without spaces, ',' or '='")
    }
}

/// An NVMe qualified name: `nqn.` first, and it fits the kernel's 224-byte buffer with its NUL.
pub fn check_nqn(s: &str) -> Result<(), &'static str> {
    const WHY: &str = "expected an NQN starting with 'nqn.', at most 223 bytes";
    check_token_value(s).map_err(|_| WHY)?;
    if s.starts_with("nqn.") && s.len() <= NQN_MAX {
        Ok(())
    } else {
        Err(WHY)
    }
}

/// A host ID as the kernel's `uuid_parse` accepts it: 8-4-4-4-12 hex digits.
pub fn check_uuid(s: &str) -> Result<(), &'static str> {
    let ok = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err("expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    }
}

/// An FC port address: `nn-0x<16 hex>:pn-0x<16 hex>` (world wide node and port names).
pub fn check_fc_addr(s: &str) -> Result<(), &'static str> {
    let hex16 = |h: &str| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = s
        .strip_prefix("nn-0x")
        .and_then(|rest| rest.split_once(":pn-0x"))
        .is_some_and(|(nn, pn)| hex16(nn) && hex16(pn));
    if ok {
        Ok(())
    } else {
        Err("expected nn-0x<16 hex digits>:pn-0x<16 hex digits>")
    }
}

/// tcp and rdma take the port through the kernel's inet_pton_with_scope: a decimal u16.
fn check_port(s: &str) -> Result<(), &'static str> {
    match s.parse::<u16>() {
        Ok(port) if port > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("expected a port number from 1 to 65535"),
    }
}

/// Parse discovery.conf: one discovery controller per line, in nvme-cli `connect-all` syntax.
///
/// Blank lines and comments are skipped; a comment is any word starting with `#` and the rest of its
/// line (nvme-cli itself only skips lines whose first byte is `#`). A bad line gives one message
/// `FILE:LINE: what is wrong` and is left out; the other lines still count. A line that repeats an
/// earlier controller (same address and host NQN) is reported and left out too.
pub fn parse_discovery_conf(text: &str, file: &str) -> (Vec<DiscoverySource>, Vec<String>) {
    let mut sources: Vec<(usize, DiscoverySource)> = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let words: Vec<&str> = line
            .split_ascii_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        if words.is_empty() {
            continue;
        }
        match parse_connect_line(&words) {
            Ok(mut source) => match sources.iter().find(|(_, s)| s.addr == source.addr) {
                Some((first, _)) => errors.push(format!(
                    "{file}:{number}: {} is already listed on line {first}",
                    source.addr
                )),
                None => {
                    for key in [
                        &mut source.opts.dhchap_secret,
                        &mut source.opts.dhchap_ctrl_secret,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        let from = key.source().to_string();
                        key.relabel(format!("{file}:{number} ({from})"));
                    }
                    sources.push((number, source))
                }
            },
            Err(e) => errors.push(format!("{file}:{number}: {e}")),
        }
    }
    (sources.into_iter().map(|(_, s)| s).collect(), errors)
}

/// One discovery controller from connect-all words (a discovery.conf line, a rd.nvmf.discover entry).
pub fn parse_connect_line(words: &[&str]) -> Result<DiscoverySource, UsageError> {
    let parser = lexopt::Parser::from_args(words.iter().copied());
    crate::cli::parse_connect_args(parser)?.into_source()
}

/// Read `/etc/nvme/hostnqn` and `/etc/nvme/hostid`: (hostnqn, hostid, warnings).
///
/// Values are trimmed. A missing file is normal (the kernel then uses its default host); an unreadable
/// file or a bad value is a warning naming the file, and the value is not used.
pub fn read_host_identity(
    hostnqn_path: &Path,
    hostid_path: &Path,
) -> (Option<String>, Option<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let hostnqn = read_identity_file(hostnqn_path, check_nqn, &mut warnings);
    let hostid = read_identity_file(hostid_path, check_uuid, &mut warnings);
    (hostnqn, hostid, warnings)
}

fn read_identity_file(
    path: &Path,
    check: fn(&str) -> Result<(), &'static str>,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warnings
                .push(crate::error::Error::io(format!("read {}", path.display()), &e).to_string());
            return None;
        }
    };
    let value = String::from_utf8_lossy(&text).trim().to_owned();
    match check(&value) {
        Ok(()) => Some(value),
        Err(why) => {
            warnings.push(format!(
                "ignoring {}: invalid value '{}': {why}",
                path.display(),
                value.escape_debug()
            ));
            None
        }
    }
}

/// The host NQN and host ID to connect with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    pub hostnqn: Option<String>,
    pub hostid: Option<String>,
}

impl HostIdentity {
    /// `self` over `lower`, the host NQN and host ID taken as a pair from one source.
    ///
    /// The kernel keys its hosts by NQN and refuses a known NQN with another host ID (and the
    /// reverse), so a host NQN from the command line with a host ID from /etc/nvme/hostid made for
    /// another NQN is a connect that fails. Hence: the first source that names a host NQN gives
    /// the host ID too; an explicit host ID (`-I`, `rd.nvmf.hostid`) still wins over a lower one.
    ///
    /// Precedence, highest first: the command line (`-q`, `-I`), the kernel command line
    /// (`rd.nvmf.hostnqn`, `rd.nvmf.hostid`, which dracut writes over the files), then the files in
    /// /etc/nvme: `HostIdentity::from(&args.opts).over(kernel).over(files)`.
    pub fn over(self, lower: HostIdentity) -> HostIdentity {
        match self.hostnqn {
            Some(_) => self,
            None => HostIdentity {
                hostnqn: lower.hostnqn,
                hostid: self.hostid.or(lower.hostid),
            },
        }
    }
}

impl From<&ConnectOpts> for HostIdentity {
    fn from(opts: &ConnectOpts) -> HostIdentity {
        HostIdentity {
            hostnqn: opts.hostnqn.clone(),
            hostid: opts.hostid.clone(),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_key_on_a_line_says_which_line_and_a_bad_one_is_that_lines_error() {
        let key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        let bad = "DHHC-1:00:AAECAwQF:";
        let text = format!(
            "-t tcp -a 10.0.0.1 --dhchap-secret {key}\n-t tcp -a 10.0.0.2 --dhchap-ctrl-secret {bad}\n"
        );
        let (sources, errors) = parse_discovery_conf(&text, "/etc/nvme/discovery.conf");
        assert_eq!(sources.len(), 1);
        let s = sources[0].opts.dhchap_secret.as_ref().unwrap();
        assert_eq!(s.expose(), key);
        assert!(
            s.source().starts_with("/etc/nvme/discovery.conf:1"),
            "{}",
            s.source()
        );
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(
                "/etc/nvme/discovery.conf:2: --dhchap-ctrl-secret: the DH-HMAC-CHAP key"
            ),
            "{}",
            errors[0]
        );
        assert!(!errors[0].contains("AAECAwQF"), "{}", errors[0]);
    }

    #[test]
    fn tls_settings_on_a_line_are_that_lines_and_bad_serials_its_error() {
        let text = "-t tcp -a 10.0.0.1 --tls --keyring 0x1f\n\
                    -t tcp -a 10.0.0.2 --tls_key=305419896\n\
                    -t tcp -a 10.0.0.3 --keyring .nvme\n\
                    -t tcp -a 10.0.0.4 --tls-key 0\n\
                    -t tcp -a 10.0.0.5 --keyring mykeys\n";
        let (sources, errors) = parse_discovery_conf(text, "/etc/nvme/discovery.conf");
        let tls: Vec<_> = sources
            .iter()
            .map(|s| (s.opts.tls, s.opts.keyring, s.opts.tls_key))
            .collect();
        assert_eq!(
            tls,
            [
                (true, Some(0x1f), None),
                (false, None, Some(0x1234_5678)),
                // .nvme is the kernel's default keyring: configured, nothing to pass (0).
                (false, Some(0), None),
            ]
        );
        assert!(sources[2].opts.tls_configured());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "/etc/nvme/discovery.conf:4: invalid value '0' for --tls-key: expected a key serial"
            ),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains(":5: invalid value 'mykeys' for --keyring")
                && errors[1].contains("not looked up"),
            "{}",
            errors[1]
        );
    }
    use super::*;

    const GOOD: &str = include_str!("../tests/data/discovery-good.conf");
    const BAD: &str = include_str!("../tests/data/discovery-bad.conf");

    fn addrs(sources: &[DiscoverySource]) -> Vec<String> {
        sources.iter().map(|s| s.addr.to_string()).collect()
    }

    #[test]
    fn good_file() {
        let (sources, errors) = parse_discovery_conf(GOOD, "discovery.conf");
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            addrs(&sources),
            [
                "tcp traddr=192.168.1.3,trsvcid=8009",
                "tcp traddr=192.168.1.4,trsvcid=8009,host_iface=eth1",
                "rdma traddr=10.0.0.7,trsvcid=4420,\
                 hostnqn=nqn.2014-08.org.nvmexpress:uuid:0c468c4d-a385-47e0-8299-6e95051277db",
                "fc traddr=nn-0x200400a098d85236:pn-0x201400a098d85236,\
                 host_traddr=nn-0x200000109b7db455:pn-0x100000109b7db455",
                "tcp traddr=fe80::1%eth0,trsvcid=8009",
                "tcp traddr=192.168.1.5,trsvcid=4420",
            ]
        );
        let persistent: Vec<bool> = sources.iter().map(|s| s.persistent).collect();
        assert_eq!(persistent, [false, true, false, false, false, false]);
        assert_eq!(
            sources[2].opts.hostnqn.as_deref(),
            Some(sources[2].addr.hostnqn.as_str())
        );
        assert_eq!(sources[4].opts.keep_alive_tmo, Some(30));
        assert_eq!(sources[4].opts.ctrl_loss_tmo, Some(-1));
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (sources, errors) = parse_discovery_conf(BAD, "/etc/nvme/discovery.conf");
        assert_eq!(
            addrs(&sources),
            [
                "tcp traddr=192.168.1.3,trsvcid=8009",
                "rdma traddr=10.0.0.1,trsvcid=4420",
            ]
        );
        let f = "/etc/nvme/discovery.conf";
        assert_eq!(
            errors,
            [
                format!("{f}:3: --transport is required"),
                format!("{f}:4: invalid value 'abc' for --nr-io-queues: expected a number"),
                format!("{f}:5: unknown option '--concat'"),
                format!(
                    "{f}:6: invalid value '192.168.1.12' for --traddr: \
                     expected nn-0x<16 hex digits>:pn-0x<16 hex digits>"
                ),
                format!("{f}:8: tcp traddr=192.168.1.3,trsvcid=8009 is already listed on line 2"),
                format!("{f}:9: unexpected argument 'stray'"),
                format!("{f}:10: --traddr is required for tcp"),
            ]
        );
    }

    #[test]
    fn loop_needs_no_traddr_and_takes_no_port() {
        let (sources, errors) = parse_discovery_conf("--transport=loop\n", "f");
        assert!(errors.is_empty());
        assert_eq!(addrs(&sources), ["loop traddr=none"]);
        let (_, errors) = parse_discovery_conf("-t loop -s 4420\n", "f");
        assert_eq!(
            errors,
            ["f:1: invalid value '4420' for --trsvcid: not used by the loop transport"]
        );
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(parse_discovery_conf("", "f"), (vec![], vec![]));
        assert_eq!(
            parse_discovery_conf("\n  \n# x\n\t#y\n", "f"),
            (vec![], vec![])
        );
    }

    #[test]
    fn validators() {
        assert!(check_nqn("nqn.2014-08.org.nvmexpress.discovery").is_ok());
        assert!(check_nqn("iqn.2014-08").is_err());
        assert!(check_nqn(&format!("nqn.{}", "a".repeat(219))).is_ok());
        assert!(check_nqn(&format!("nqn.{}", "a".repeat(220))).is_err());
        assert!(check_nqn("nqn.a,b").is_err());
        assert!(check_uuid("2b9f0ff4-4fe6-4d56-9ab3-2D5A1C3F1A5E").is_ok());
        assert!(check_uuid("2b9f0ff4-4fe6-4d56-9ab3-2d5a1c3f1a5").is_err());
        assert!(check_uuid("2b9f0ff4x4fe6-4d56-9ab3-2d5a1c3f1a5e").is_err());
        assert!(check_fc_addr("nn-0x200400a098d85236:pn-0x201400a098d85236").is_ok());
        assert!(check_fc_addr("nn-200400a098d85236:pn-201400a098d85236").is_err());
        assert!(check_fc_addr("nn-0x200400a098d8523:pn-0x201400a098d852366").is_err());
        assert!(check_token_value("a\nb").is_err());
        assert!(check_token_value("").is_err());
        assert!(check_token_value("a b").is_err());
        assert!(check_port("65535").is_ok());
        assert!(check_port("0").is_err());
        assert!(check_port("+80").is_err());
    }

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("nvme-monitor-config-{}-{name}", std::process::id()));
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
    fn host_identity_files() {
        let dir = TempDir::new("identity");
        let (nqn, id) = (dir.0.join("hostnqn"), dir.0.join("hostid"));
        assert_eq!(read_host_identity(&nqn, &id), (None, None, vec![]));
        std::fs::write(&nqn, "nqn.2014-08.org.nvmexpress:uuid:1\n").unwrap();
        std::fs::write(&id, "  2b9f0ff4-4fe6-4d56-9ab3-2d5a1c3f1a5e\n").unwrap();
        let (n, i, w) = read_host_identity(&nqn, &id);
        assert_eq!(n.as_deref(), Some("nqn.2014-08.org.nvmexpress:uuid:1"));
        assert_eq!(i.as_deref(), Some("2b9f0ff4-4fe6-4d56-9ab3-2d5a1c3f1a5e"));
        assert!(w.is_empty());
        std::fs::write(&nqn, "host-1\n").unwrap();
        std::fs::write(&id, "").unwrap();
        let (n, i, w) = read_host_identity(&nqn, &id);
        assert_eq!((n, i), (None, None));
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with(&format!(
            "ignoring {}: invalid value 'host-1'",
            nqn.display()
        )));
        assert!(w[1].contains(&id.display().to_string()) && w[1].contains("UUID"));
    }

    #[test]
    fn unreadable_identity_file_is_a_warning() {
        let dir = TempDir::new("unreadable");
        // A directory cannot be read as a file: EISDIR.
        let (n, _, w) = read_host_identity(&dir.0, &dir.0.join("missing"));
        assert_eq!(n, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with(&format!("unable to read {}", dir.0.display())));
    }

    #[test]
    fn command_line_identity_wins_over_files() {
        let cli = ConnectOpts {
            hostnqn: Some("nqn.cli".into()),
            ..Default::default()
        };
        let kernel = HostIdentity {
            hostnqn: Some("nqn.kernel".into()),
            hostid: None,
        };
        let files = HostIdentity {
            hostnqn: Some("nqn.file".into()),
            hostid: Some("file-id".into()),
        };
        let id = HostIdentity::from(&cli)
            .over(kernel.clone())
            .over(files.clone());
        assert_eq!(id.hostnqn.as_deref(), Some("nqn.cli"));
        // A pair from one source: the file's host ID belongs to the file's NQN, not to -q's.
        assert_eq!(id.hostid, None);
        let id = HostIdentity::default()
            .over(kernel.clone())
            .over(files.clone());
        assert_eq!(id.hostnqn.as_deref(), Some("nqn.kernel"));
        assert_eq!(id.hostid, None);
        // Nothing above the files: their pair.
        let id = HostIdentity::default()
            .over(HostIdentity::default())
            .over(files.clone());
        assert_eq!(id, files);
        // An explicit -I alone wins over the file's ID, with the file's NQN.
        let id = HostIdentity {
            hostnqn: None,
            hostid: Some("cli-id".into()),
        }
        .over(files);
        assert_eq!(
            (id.hostnqn.as_deref(), id.hostid.as_deref()),
            (Some("nqn.file"), Some("cli-id"))
        );
    }
}
