//! What the configuration says, merged: host identity (a pair from one source) and the discovery
//! sources from /etc/nvme, the kernel command line (rd.nvmf.*) and the command line.

use crate::cli::Args;
use crate::config::DiscoverySource;

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
    if use_conf {
        fabrics_id = load_fabrics_conf(&args.fabrics_config, &mut sources);
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
    }
}

/// The host identity nvme-fabrics.conf's `[Host]` names.
#[derive(Default)]
struct HostIdentityFrom {
    hostnqn: Option<String>,
    hostid: Option<String>,
}

/// nvme-cli 3's nvme-fabrics.conf and its drop-ins: each `[Discovery Controller]` path becomes a
/// discovery source beside discovery.conf's lines (kept with `-p`, as they are); each `[Subsystem]`
/// path a subsystem connected directly and kept connected. What we cannot do yet is said and
/// skipped, never done half: a path that needs TLS or DH-HMAC-CHAP is not connected without it.
fn load_fabrics_conf(
    path: &std::path::Path,
    sources: &mut Vec<DiscoverySource>,
) -> HostIdentityFrom {
    let (conf, warnings) = crate::fabrics_conf::load(path);
    for w in warnings {
        warn!("{w}");
    }
    for i in &conf.ignored {
        debug!("{i}");
    }
    for ep in &conf.discovery {
        if !ep.security.is_empty() || !conf.host_security.is_empty() {
            warn!(
                "{}: discovery controller at {} needs TLS or DH-HMAC-CHAP settings, which nvme-monitor does not support yet: skipped",
                ep.source, ep.addr
            );
            continue;
        }
        if ep.nqn != crate::fabrics::DISCOVERY_NQN {
            debug!(
                "{}: discovery controller at {} is reached under the well-known discovery NQN, not {}",
                ep.source, ep.addr, ep.nqn
            );
        }
        sources.push(ep.to_discovery_source());
    }
    for ep in &conf.subsystems {
        if !ep.security.is_empty() || !conf.host_security.is_empty() {
            warn!(
                "{}: [Subsystem] {} at {} needs TLS or DH-HMAC-CHAP settings, which nvme-monitor does not support yet: skipped",
                ep.source, ep.nqn, ep.addr
            );
            continue;
        }
        match ep.to_direct_source() {
            Some(src) => sources.push(src),
            None => warn!(
                "{}: [Subsystem] nqn '{}' is not an NQN: skipped",
                ep.source, ep.nqn
            ),
        }
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
            "[Discovery Controller]\ntls = yes\ncontroller = transport=tcp;traddr=10.0.0.4;trsvcid=8009\n",
        )
        .unwrap();
        let mut sources = Vec::new();
        let id = load_fabrics_conf(&dir.join("nvme-fabrics.conf"), &mut sources);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            id.hostnqn.as_deref(),
            Some("nqn.2014-08.org.nvmexpress:uuid:fabrics")
        );
        let got: Vec<(&str, Option<i32>)> = sources
            .iter()
            .map(|s| (s.addr.traddr.as_str(), s.opts.ctrl_loss_tmo))
            .collect();
        // The defaults section applies, a controller line wins over it; the TLS path is not
        // taken; the direct subsystem is, with the I/O defaults (none here).
        assert_eq!(
            got,
            [
                ("10.0.0.1", Some(60)),
                ("10.0.0.2", Some(30)),
                ("10.0.0.3", None)
            ]
        );
        let kinds: Vec<&str> = sources.iter().map(|s| s.subsystem.as_str()).collect();
        assert_eq!(kinds, ["", "", "nqn.2024-01.io.example:direct"]);
    }
}
