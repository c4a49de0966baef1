//! What the configuration says, merged: host identity (a pair from one source) and the discovery
//! sources from /etc/nvme, the kernel command line (rd.nvmf.*) and the command line.

use crate::cli::Args;
use crate::config::DiscoverySource;
use crate::opts::ConnectOpts;
use crate::secret::Secret;

/// Host identity and discovery sources: files first, then the kernel command line, then the CLI.
/// What the configuration says.
#[derive(Default)]
pub struct Loaded {
    pub hostnqn: String,
    pub hostid: Option<String>,
    pub sources: Vec<DiscoverySource>,
    /// `rd.nonvmf`: no NVMe over Fabrics activity at all.
    pub nonvmf: bool,
    /// `rd.nvmf.nonbft`: the NBFT is not read.
    pub nonbft: bool,
    /// nvme-fabrics.conf `[Subsystem]` keys, by subsystem NQN.
    pub subsystem_keys: Vec<SubsystemKeys>,
}

impl Loaded {
    /// Any DH-HMAC-CHAP key anywhere in what was loaded (or on the command line).
    pub fn has_secrets(&self, cli: &ConnectOpts) -> bool {
        let keyed = |o: &ConnectOpts| o.dhchap_secret.is_some() || o.dhchap_ctrl_secret.is_some();
        keyed(cli) || !self.subsystem_keys.is_empty() || self.sources.iter().any(|s| keyed(&s.opts))
    }
}

pub fn load_config(args: &Args) -> Loaded {
    let (file_nqn, file_id, warnings) = crate::config::read_host_identity(
        &args.etc_nvme.join("hostnqn"),
        &args.etc_nvme.join("hostid"),
    );
    for w in warnings {
        warn!("{w}");
    }
    let mut sources = Vec::new();
    let mut cmdline_nqn = None;
    let mut nonbft = false;
    let mut cmdline_id = None;
    let mut use_conf = !args.no_config;
    if args.cmdline {
        let path = args.procfs.join("cmdline");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let (nvmf, warnings) = crate::cmdline::parse_cmdline(&text);
                for w in warnings {
                    warn!("{}: {w}", path.display());
                }
                if nvmf.nonvmf {
                    return Loaded {
                        nonvmf: true,
                        ..Loaded::default()
                    };
                }
                if nvmf.ignores_discovery_conf() {
                    use_conf = false;
                }
                nonbft = nvmf.nonbft;
                cmdline_nqn = nvmf.hostnqn;
                cmdline_id = nvmf.hostid;
                sources.extend(nvmf.discover);
            }
            Err(e) => warn!("unable to read {}: {e}", path.display()),
        }
    }
    if use_conf {
        let path = &args.config_file;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let (conf, errors) =
                    crate::config::parse_discovery_conf(&text, &path.display().to_string());
                for e in errors {
                    warn!("{e}");
                }
                sources.extend(conf);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => debug!("no {}", path.display()),
            Err(e) => warn!("unable to read {}: {e}", path.display()),
        }
    }
    let mut fabrics_id = HostIdentityFrom::default();
    let mut subsystem_keys = Vec::new();
    if use_conf {
        fabrics_id = load_fabrics_conf(&args.fabrics_config, &mut sources, &mut subsystem_keys);
    }
    if let Some(d) = &args.discovery {
        sources.push(DiscoverySource {
            explicit: true,
            ..d.clone()
        });
    }
    use crate::config::HostIdentity;
    let id = HostIdentity::from(&args.opts)
        .over(HostIdentity {
            hostnqn: cmdline_nqn,
            hostid: cmdline_id,
        })
        .over(HostIdentity {
            hostnqn: fabrics_id.hostnqn,
            hostid: fabrics_id.hostid,
        })
        .over(HostIdentity {
            hostnqn: file_nqn,
            hostid: file_id,
        });
    let (hostnqn, hostid) = (id.hostnqn.unwrap_or_default(), id.hostid);
    if hostnqn.is_empty() {
        warn!("no host NQN (/etc/nvme/hostnqn, --hostnqn): the kernel will use its default");
    }
    Loaded {
        hostnqn,
        hostid,
        sources,
        nonvmf: false,
        nonbft,
        subsystem_keys,
    }
}

/// The host identity nvme-fabrics.conf's `[Host]` names.
#[derive(Default)]
struct HostIdentityFrom {
    hostnqn: Option<String>,
    hostid: Option<String>,
}

/// A subsystem's own DH-HMAC-CHAP keys (nvme-fabrics.conf `[Subsystem]`): used whenever it is
/// connected, from its own paths or from any discovery log that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsystemKeys {
    pub nqn: crate::addr::Nqn,
    pub secret: Option<Secret>,
    pub ctrl_secret: Option<Secret>,
}

/// The security settings of an endpoint, checked, into its options: DH-HMAC-CHAP keys, `tls`
/// and `keyring` (a serial, or `.nvme`, the kernel's default). A setting nvme-monitor cannot pass
/// on (a PSK to import: `tls-key`, `tls-key-identity`; `concat`) skips the endpoint (`Err` with
/// the warning): it is never connected without it.
fn endpoint_keys(
    ep: &crate::fabrics_conf::ConfEndpoint,
    what: &str,
) -> Result<ConnectOpts, String> {
    let sec = &ep.security;
    let unsupported = [
        ("tls-key", sec.tls_key.is_some()),
        ("tls-key-identity", sec.tls_key_identity.is_some()),
        ("concat", sec.concat.unwrap_or(false)),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{}: {what} at {} needs {name}, which nvme-monitor does not pass on (import the PSK into the keyring, e.g. nvme tls-key --import, and set tls and keyring): skipped",
            ep.source, ep.addr
        ));
    }
    let keyring = match sec.keyring.as_deref() {
        None => None,
        // The kernel's default keyring: TLS configured, nothing to pass (see ConnectOpts).
        Some(".nvme") => Some(0),
        Some(v) => Some(crate::tls::parse_key_serial(v).map_err(|expected| {
            format!(
                "{}: {what} at {}: keyring '{v}': {expected}, or .nvme (other keyring names are not looked up): skipped",
                ep.source, ep.addr
            )
        })?),
    };
    let load = |value: &Option<String>, key: &str| {
        value
            .as_deref()
            .map(|v| Secret::load(v, &format!("{} ({key})", ep.source)))
            .transpose()
            .map_err(|e| format!("{e}: {what} at {} skipped", ep.addr))
    };
    let mut opts = ep.opts.clone();
    opts.dhchap_secret = load(&sec.kxchap_secret, "kxchap-secret")?;
    opts.dhchap_ctrl_secret = load(&sec.kxchap_ctrl_secret, "kxchap-ctrl-secret")?;
    opts.dhchap_for_discovery = ep.own_dhchap();
    opts.tls = sec.tls.unwrap_or(false);
    opts.keyring = keyring;
    Ok(opts)
}

/// nvme-cli 3's nvme-fabrics.conf and its drop-ins: each `[Discovery Controller]` path becomes a
/// discovery source beside discovery.conf's lines (kept with `-p`, as they are); each `[Subsystem]`
/// path a subsystem connected directly and kept connected. DH-HMAC-CHAP keys (`kxchap-secret`,
/// `kxchap-ctrl-secret`) go with them, `[Host]`'s to every endpoint of the files; a discovery
/// controller gets one only when its section or `[Discovery Controller Defaults]` set it. A
/// `[Subsystem]`'s keys also serve its NQN when a discovery log names it (`keys`). A path that
/// needs what we cannot pass on is said and skipped, never connected without it.
fn load_fabrics_conf(
    path: &std::path::Path,
    sources: &mut Vec<DiscoverySource>,
    keys: &mut Vec<SubsystemKeys>,
) -> HostIdentityFrom {
    let (conf, warnings) = crate::fabrics_conf::load(path);
    for w in warnings {
        warn!("{w}");
    }
    for i in &conf.ignored {
        debug!("{i}");
    }
    for ep in &conf.discovery {
        let opts = match endpoint_keys(ep, "discovery controller") {
            Ok(o) => o,
            Err(why) => {
                warn!("{why}");
                continue;
            }
        };
        if ep.nqn != crate::fabrics::DISCOVERY_NQN {
            debug!(
                "{}: discovery controller at {} is reached under the well-known discovery NQN, not {}",
                ep.source, ep.addr, ep.nqn
            );
        }
        sources.push(DiscoverySource {
            opts,
            ..ep.to_discovery_source()
        });
    }
    for ep in &conf.subsystems {
        let what = format!("[Subsystem] {}", ep.nqn);
        let opts = match endpoint_keys(ep, &what) {
            Ok(o) => o,
            Err(why) => {
                warn!("{why}");
                continue;
            }
        };
        let Some(src) = ep.to_direct_source() else {
            warn!(
                "{}: [Subsystem] nqn '{}' is not an NQN: skipped",
                ep.source, ep.nqn
            );
            continue;
        };
        // Its own keys only (its section, [Subsystem] defaults): [Host]'s reach this file's
        // endpoints, not every discovery log that names the NQN. Controller lines set no keys,
        // so where the section set one, the merged value is the section's.
        let own = &ep.own_security;
        let secret = own.kxchap_secret.as_ref().and(opts.dhchap_secret.clone());
        let ctrl_secret = own
            .kxchap_ctrl_secret
            .as_ref()
            .and(opts.dhchap_ctrl_secret.clone());
        if (secret.is_some() || ctrl_secret.is_some())
            && !keys.iter().any(|k| k.nqn == src.subsystem)
        {
            keys.push(SubsystemKeys {
                nqn: src.subsystem,
                secret,
                ctrl_secret,
            });
        }
        sources.push(DiscoverySource { opts, ..src });
    }
    HostIdentityFrom {
        hostnqn: conf.hostnqn,
        hostid: conf.hostid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabrics_conf_discovery_controllers_become_sources_and_unsupported_parts_are_skipped() {
        let dir = std::env::temp_dir().join(format!("nm-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nvme-fabrics.conf.d")).unwrap();
        std::fs::write(
            dir.join("nvme-fabrics.conf"),
            "[Host]\nhostnqn = nqn.2014-08.org.nvmexpress:uuid:fabrics\n\n\
             [Discovery Controller Defaults]\nctrl-loss-tmo = 60\n\n\
             [Discovery Controller]\ncontroller = transport=tcp;traddr=10.0.0.1;trsvcid=8009\n\
             controller = transport=tcp;traddr=10.0.0.2;trsvcid=8009;ctrl-loss-tmo=30\n\n\
             [Subsystem]\nnqn = nqn.2024-01.io.example:direct\ncontroller = transport=tcp;traddr=10.0.0.3\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("nvme-fabrics.conf.d/10-tls.conf"),
            "[Discovery Controller]\ntls = yes\nkeyring = 0x2b\ncontroller = transport=tcp;traddr=10.0.0.4;trsvcid=8009\n\n\
             [Discovery Controller]\ntls-key = NVMeTLSkey-1:01:cHNrIHNlY3JldA==:\ncontroller = transport=tcp;traddr=10.0.0.6;trsvcid=8009\n\n\
             [Discovery Controller]\ntls = yes\nkeyring = mykeys\ncontroller = transport=tcp;traddr=10.0.0.7;trsvcid=8009\n",
        )
        .unwrap();
        let mut sources = Vec::new();
        let id = load_fabrics_conf(
            &dir.join("nvme-fabrics.conf"),
            &mut sources,
            &mut Vec::new(),
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            id.hostnqn.as_deref(),
            Some("nqn.2014-08.org.nvmexpress:uuid:fabrics")
        );
        let got: Vec<(&str, Option<i32>)> = sources
            .iter()
            .map(|s| (s.addr.traddr.as_str(), s.opts.ctrl_loss_tmo))
            .collect();
        // The defaults section applies, a controller line wins over it; the direct subsystem is
        // taken with the I/O defaults (none here); the TLS path with tls and its keyring, but not
        // one whose PSK would have to be imported, nor one whose keyring is a name.
        assert_eq!(
            got,
            [
                ("10.0.0.1", Some(60)),
                ("10.0.0.2", Some(30)),
                ("10.0.0.4", Some(60)),
                ("10.0.0.3", None)
            ]
        );
        let kinds: Vec<&str> = sources.iter().map(|s| s.subsystem.as_str()).collect();
        assert_eq!(kinds, ["", "", "", "nqn.2024-01.io.example:direct"]);
        let tls: Vec<(bool, Option<u32>)> = sources
            .iter()
            .map(|s| (s.opts.tls, s.opts.keyring))
            .collect();
        assert_eq!(
            tls,
            [
                (false, None),
                (false, None),
                (true, Some(0x2b)),
                (false, None)
            ]
        );
    }

    #[test]
    fn fabrics_conf_keys_go_with_their_endpoints_and_subsystems() {
        let key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        let ctrl =
            "DHHC-1:02:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wyg3Bcw==:";
        let dir = std::env::temp_dir().join(format!("nm-settings-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("nvme-fabrics.conf"),
            format!(
                "[Host]\nhostnqn = nqn.2014-08.org.nvmexpress:uuid:keys\nkxchap-secret = {key}\n\n\
                 [Discovery Controller]\ncontroller = transport=tcp;traddr=10.0.0.1;trsvcid=8009\n\n\
                 [Discovery Controller]\nkxchap-ctrl-secret = {ctrl}\ncontroller = transport=tcp;traddr=10.0.0.2;trsvcid=8009\n\n\
                 [Subsystem]\nnqn = nqn.2024-01.io.example:own\nkxchap-ctrl-secret = {ctrl}\ncontroller = transport=tcp;traddr=10.0.0.3\n\n\
                 [Subsystem]\nnqn = nqn.2024-01.io.example:bad\nkxchap-secret = DHHC-1:00:AAECAwQF:\ncontroller = transport=tcp;traddr=10.0.0.4\n\n\
                 [Subsystem]\nnqn = nqn.2024-01.io.example:tls\ntls = yes\ncontroller = transport=tcp;traddr=10.0.0.5\n"
            ),
        )
        .unwrap();
        let (mut sources, mut keys) = (Vec::new(), Vec::new());
        load_fabrics_conf(&dir.join("nvme-fabrics.conf"), &mut sources, &mut keys);
        let _ = std::fs::remove_dir_all(&dir);
        let at = |a: &str| sources.iter().find(|s| s.addr.traddr.as_str() == a);
        // [Host]'s key reaches every endpoint, but a discovery controller only I/O-side.
        let dc1 = at("10.0.0.1").unwrap();
        assert_eq!(
            dc1.opts.dhchap_secret.as_ref().map(|k| k.expose()),
            Some(key)
        );
        assert!(!dc1.opts.dhchap_for_discovery);
        let dc2 = at("10.0.0.2").unwrap();
        assert!(
            dc2.opts.dhchap_for_discovery,
            "its section set a key: meant for it"
        );
        assert_eq!(
            dc2.opts.dhchap_ctrl_secret.as_ref().map(|k| k.expose()),
            Some(ctrl)
        );
        let own = at("10.0.0.3").unwrap();
        assert_eq!(own.subsystem.as_str(), "nqn.2024-01.io.example:own");
        assert!(own.opts.dhchap_secret.is_some() && own.opts.dhchap_ctrl_secret.is_some());
        assert!(
            own.opts
                .dhchap_ctrl_secret
                .as_ref()
                .unwrap()
                .source()
                .contains("kxchap-ctrl-secret")
        );
        // A bad key is skipped, never connected without what it needs; tls = yes is passed on.
        assert!(at("10.0.0.4").is_none());
        assert!(at("10.0.0.5").is_some_and(|s| s.opts.tls && s.opts.tls_always()));
        let nqns: Vec<&str> = keys.iter().map(|k| k.nqn.as_str()).collect();
        // The TLS one has [Host]'s key only: that serves its own path, not discovery logs.
        assert_eq!(nqns, ["nqn.2024-01.io.example:own"]);
        // own sets only the controller key: the host key for it comes from wherever the
        // connection gets one (merged per key in discover::connect_entry).
        assert!(keys[0].secret.is_none() && keys[0].ctrl_secret.is_some());
    }
}
