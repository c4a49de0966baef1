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
    if let Some(d) = &args.discovery {
        sources.push(d.clone());
    }
    use crate::config::HostIdentity;
    let id = HostIdentity::from(&args.opts)
        .over(HostIdentity {
            hostnqn: cmdline_nqn,
            hostid: cmdline_id,
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
    }
}
