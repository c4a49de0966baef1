//! The command line: the monitor's own options and nvme-cli's `connect-all` options.
//!
//! Connection options keep nvme-cli's long names and short letters, and the same parser reads
//! discovery.conf lines ([`parse_connect_args`]), so users write them once. Values the kernel would
//! reject are rejected here, naming the option, instead of as an EINVAL from /dev/nvme-fabrics later.
//!
//! # References
//! - nvme-cli Documentation/nvme-connect-all.txt (option names and letters)
//! - drivers/nvme/host/fabrics.c `nvmf_parse_options` (ranges the kernel enforces)

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::addr::Transport;
use crate::config::{self, ConnectArgs, DiscoverySource};
use crate::log::{Level, Target};
use crate::opts::ConnectOpts;

/// Exit status: everything went as asked.
pub const EXIT_OK: i32 = 0;
/// Exit status: a fatal error at startup or while running.
pub const EXIT_FATAL: i32 = 1;
/// Exit status: bad command line or configuration.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: `--once` finished, but at least one discovery failed.
pub const EXIT_DISCOVERY_FAILED: i32 = 3;

/// What `--version` prints.
pub const VERSION: &str = concat!("nvme-monitor ", env!("CARGO_PKG_VERSION"));

/// What `--help` prints.
pub const USAGE: &str = "\
Usage: nvme-monitor [OPTIONS]
       nvme-monitor status [-o normal|json] [--state-dir DIR]
       nvme-monitor nbft show [-o normal|json] [--nbft-path DIR]

Keeps NVMe over Fabrics connections up: listens to kernel events, runs discovery, connects
subsystems and keeps persistent discovery controllers, from the initramfs to the booted system.

Monitor:
  -A, --autoconnect            connect the subsystems that discovery reports
  -p, --persistent             keep discovery controllers connected to receive change events
  -K, --keep                   leave the discovery controllers we created connected on exit
  -C, --config-file FILE       discovery controllers, one per line in connect-all syntax
                               (default: discovery.conf in --etc-dir)
      --config FILE            nvme-cli 3's connection config, its drop-ins in FILE.d/*.conf
                               (default: nvme-fabrics.conf in --etc-dir)
      --no-config              read neither config file
      --nbft                   connect what the firmware's boot tables (NBFT) name (the
                               default when a table exists)
      --no-nbft                ignore the NBFT
      --nbft-path DIR          where the NBFT* tables are (default: /sys/firmware/acpi/tables)
      --owner NAME             our name in nvme-cli 3's controller registry
                               (default: nvme-monitor)
      --epcsd-poll-interval MIN
                               with -p, read the log of a discovery controller that cannot
                               be kept (no EPCSD) every MIN minutes (default: 15)
      --cmdline                also use rd.nvmf.* parameters from the kernel command line
      --state-dir DIR          where the handoff state is kept (default: /run/nvme-monitor)
      --once                   discover and connect once, then exit
      --prune-grace SECONDS    keep a referral no log names any more, or an FC address whose
                               port is gone, this long before releasing it (default: 300)
      --dry-run                log what would be done, change nothing
      --no-mask-udev           do not mask nvme-cli's 70-nvmf-autoconnect.rules while running
      --log stderr|kmsg        where log records go (default: stderr)
  -v, --verbose                log debug messages too
  -S, --silent                 log only warnings and errors
  -h, --help                   print this help and exit
  -V, --version                print the version and exit

Discovery controller (as nvme connect-all):
  -t, --transport TYPE         rdma, fc, tcp or loop
  -a, --traddr ADDR            its address (fc: nn-0x<16 hex>:pn-0x<16 hex>)
  -s, --trsvcid PORT           its port (default: 8009 for tcp, 4420 for rdma)
  -w, --host-traddr ADDR       local address to connect from (required for fc)
  -f, --host-iface IFACE       local interface to connect from (tcp)

Connection options, for every controller (a discovery.conf line's own options win):
  -q, --hostnqn NQN            host NQN (default: hostnqn in --etc-dir)
  -I, --hostid UUID            host ID (default: hostid in --etc-dir)
  -i, --nr-io-queues N         I/O queues, at least 1
  -W, --nr-write-queues N      extra write queues, at least 1
  -P, --nr-poll-queues N       polling queues, at least 1
  -Q, --queue-size N           I/O queue size, 16 to 1024
  -k, --keep-alive-tmo SEC     keep-alive timeout
  -c, --reconnect-delay SEC    delay between reconnect attempts, at least 1
  -l, --ctrl-loss-tmo SEC      give up reconnecting after SEC, -1 never
  -F, --fast_io_fail_tmo SEC   fail I/O after SEC while reconnecting, -1 never
  -T, --tos N                  IP type of service 0 to 255, -1 for the transport default
  -D, --duplicate-connect      allow a second connection to the same controller
      --disable-sqflow         disable submission queue flow control
  -g, --hdr-digest             enable the transport header digest (tcp)
  -G, --data-digest            enable the transport data digest (tcp)
      --dhchap-secret KEY      DH-HMAC-CHAP host key (DHHC-1:..., or /path/to/a/file holding it,
                               mode 0600); nvme-cli's -S is our --silent
      --dhchap-ctrl-secret KEY DH-HMAC-CHAP controller key: bidirectional authentication
      --tls                    NVMe/TCP over TLS on every connection (PSK from the keyring)
      --keyring SERIAL         keyring holding the TLS PSKs (default the kernel's .nvme); with it,
                               discovery log entries that ask for TLS get it
      --tls-key SERIAL         TLS with this PSK (a key serial, decimal or 0x hex)

Testing:
      --sysfs-root DIR         instead of /sys
      --dev-root DIR           instead of /dev
      --proc-root DIR          instead of /proc
      --run-root DIR           instead of /run (where the udev rule mask goes)
      --uevent-buffer BYTES    uevent socket receive buffer (default 16777216; small to
                               test the overflow path)
      --etc-dir DIR            instead of /etc/nvme (hostnqn, hostid, discovery.conf,
                               nvme-fabrics.conf)

Status (nvme-monitor status): what the running daemon knows, per discovery address
  -o, --output-format FMT      normal or json (default: normal)
      --state-dir DIR          the daemon's state directory (default: /run/nvme-monitor)
      --sysfs-root DIR, --proc-root DIR as above

NBFT (nvme-monitor nbft show): the firmware's NVMe Boot Firmware Tables, as nvme nbft show
  -o, --output-format FMT      normal or json (default: normal; json has nvme-cli's keys)
      --nbft-path DIR          where the NBFT* tables are (default: /sys/firmware/acpi/tables)
nbft cmdline: the initramfs network setup the HFIs ask for, one argument per line
  (ifname=nbftN:MAC, vlan=, ip= as dracut's nvmf writes them, rd.neednet=1)

What it does on each kernel event:
  discovery log change AEN,    re-read that discovery controller's log; connect new subsystems
  rediscover (reconnect)       (with -A); follow referrals from the main loop
  FC nvmediscovery             discover over FC at (host_traddr, traddr), cutting a backoff short
  discovery controller removed recreate it if its address was asked for (-p), first at once,
                               then with backoff (1 s doubling to 60 s)
  new discovery controller     use it; never delete one we did not create
  events during a discovery    coalesced per address into one re-run afterwards
  uevent buffer overflow       rescan sysfs, rediscover every address
  SIGTERM, SIGINT              delete our discovery controllers (not with -K; never the NBFT's),
                               never I/O ones
  SIGHUP                       re-read the configuration

Exit status: 0 ok, 1 fatal error, 2 usage or configuration error,
3 --once finished but at least one discovery failed.
status: 0 a daemon runs, 1 none runs (or its status cannot be read), 2 usage error.
nbft show, nbft cmdline: 0 every table parsed (or there is none), 1 a table was refused or
unreadable, 2 usage error.
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Box<Args>),
    /// `nvme-monitor status`: report on the running daemon, start none.
    Status(StatusArgs),
    /// `nvme-monitor nbft show`: print the firmware's NBFT tables.
    Nbft(NbftArgs),
    Help,
    Version,
}

/// `-o/--output-format`, as nvme-cli names it (its `binary` has no meaning here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Normal,
    Json,
}

/// Everything `nvme-monitor status` needs: where the daemon publishes, and the roots to check it
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusArgs {
    pub output: OutputFormat,
    pub state_dir: PathBuf,
    pub sysfs: PathBuf,
    pub procfs: PathBuf,
}

impl Default for StatusArgs {
    fn default() -> StatusArgs {
        let a = Args::default();
        StatusArgs {
            output: OutputFormat::Normal,
            state_dir: a.state_dir,
            sysfs: a.sysfs,
            procfs: a.procfs,
        }
    }
}

/// Everything `nvme-monitor nbft show` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbftArgs {
    /// `show`, or `cmdline`: the initramfs network setup as `ifname=`/`ip=`/`vlan=` arguments.
    pub cmdline: bool,
    pub output: OutputFormat,
    /// `--nbft-path`: the directory with the `NBFT*` files.
    pub nbft_path: PathBuf,
}

impl Default for NbftArgs {
    fn default() -> NbftArgs {
        NbftArgs {
            cmdline: false,
            output: OutputFormat::Normal,
            nbft_path: PathBuf::from(crate::nbft_show::DEFAULT_TABLES_DIR),
        }
    }
}

/// Everything `Command::Run` needs from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub autoconnect: bool,
    /// `-p`: one meaning for connect-all and the monitor: discovery controllers stay connected.
    pub persistent: bool,
    pub keep: bool,
    pub verbose: u8,
    pub silent: bool,
    /// `-C`: discovery.conf.
    pub config_file: PathBuf,
    /// `--config`: nvme-cli 3's nvme-fabrics.conf; its drop-ins are in the same path plus `.d`.
    pub fabrics_config: PathBuf,
    /// Neither `config_file` nor `fabrics_config` is read.
    pub no_config: bool,
    /// `--no-nbft` clears it: leave the firmware's boot tables alone.
    pub nbft: bool,
    /// `--nbft-path`; without it, `firmware/acpi/tables` under `--sysfs-root`.
    pub nbft_path: Option<PathBuf>,
    /// `--owner`: what we write as owner in nvme-cli 3's registry, and how we know our entries.
    /// Checked: 1 to [`crate::registry::OWNER_MAX`] bytes, no '/', whitespace or control character.
    pub owner: String,
    /// `--epcsd-poll-interval`, in minutes, at least 1.
    pub epcsd_poll_interval: u32,
    pub state_dir: PathBuf,
    pub log: Target,
    pub once: bool,
    /// `--prune-grace`, in seconds.
    pub prune_grace: u32,
    /// `--uevent-buffer`: the uevent socket's receive buffer in bytes.
    pub uevent_buffer: u32,
    pub dry_run: bool,
    pub cmdline: bool,
    pub no_mask_udev: bool,
    pub sysfs: PathBuf,
    pub devfs: PathBuf,
    pub procfs: PathBuf,
    /// /run: where `udev/rules.d` gets the mask link, whatever `--state-dir` says.
    pub run_root: PathBuf,
    pub etc_nvme: PathBuf,
    /// `-t/-a/...`: a discovery controller named on the command line. Its `opts` are empty and its
    /// `addr.hostnqn` unset: `Args::opts` apply to it as to every other connection.
    pub discovery: Option<DiscoverySource>,
    /// The connection options, defaults for every controller.
    pub opts: ConnectOpts,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            autoconnect: false,
            persistent: false,
            keep: false,
            verbose: 0,
            silent: false,
            config_file: PathBuf::from("/etc/nvme/discovery.conf"),
            fabrics_config: PathBuf::from("/etc/nvme/nvme-fabrics.conf"),
            no_config: false,
            nbft: true,
            nbft_path: None,
            owner: crate::registry::DEFAULT_OWNER.to_owned(),
            epcsd_poll_interval: 15,
            state_dir: PathBuf::from("/run/nvme-monitor"),
            log: Target::Stderr,
            once: false,
            prune_grace: 300,
            uevent_buffer: 16 << 20,
            dry_run: false,
            cmdline: false,
            no_mask_udev: false,
            sysfs: PathBuf::from("/sys"),
            devfs: PathBuf::from("/dev"),
            procfs: PathBuf::from("/proc"),
            run_root: PathBuf::from("/run"),
            etc_nvme: PathBuf::from("/etc/nvme"),
            discovery: None,
            opts: ConnectOpts::default(),
        }
    }
}

impl Args {
    /// `-S`: warnings and errors, `-v`: debug, otherwise info.
    pub fn log_level(&self) -> Level {
        if self.silent {
            Level::Warn
        } else if self.verbose > 0 {
            Level::Debug
        } else {
            Level::Info
        }
    }

    pub fn hostnqn_path(&self) -> PathBuf {
        self.etc_nvme.join("hostnqn")
    }

    pub fn hostid_path(&self) -> PathBuf {
        self.etc_nvme.join("hostid")
    }
}

/// A command line (or discovery.conf line) that cannot be used; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    UnknownOption(String),
    UnexpectedArgument(String),
    MissingValue(String),
    UnexpectedValue {
        option: String,
        value: String,
    },
    InvalidValue {
        option: String,
        value: String,
        expected: String,
    },
    Required {
        option: &'static str,
        context: Option<String>,
    },
    Conflict(&'static str, &'static str),
    /// Anything else lexopt reports, in its words.
    Other(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::UnknownOption(o) => write!(f, "unknown option '{}'", o.escape_debug()),
            UsageError::UnexpectedArgument(a) => {
                write!(f, "unexpected argument '{}'", a.escape_debug())
            }
            UsageError::MissingValue(o) => write!(f, "missing value for {o}"),
            UsageError::UnexpectedValue { option, value } => write!(
                f,
                "unexpected value '{}' for {option}: it takes none",
                value.escape_debug()
            ),
            UsageError::InvalidValue {
                option,
                value,
                expected,
            } => write!(
                f,
                "invalid value '{}' for {option}: {expected}",
                value.escape_debug()
            ),
            UsageError::Required { option, context } => match context {
                Some(c) => write!(f, "{option} is required {c}"),
                None => write!(f, "{option} is required"),
            },
            UsageError::Conflict(a, b) => write!(f, "{a} cannot be used with {b}"),
            UsageError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for UsageError {}

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> UsageError {
        match e {
            lexopt::Error::MissingValue { option } => {
                UsageError::MissingValue(option.unwrap_or_else(|| "an option".into()))
            }
            lexopt::Error::UnexpectedOption(o) => UsageError::UnknownOption(o),
            lexopt::Error::UnexpectedArgument(a) => {
                UsageError::UnexpectedArgument(a.to_string_lossy().into_owned())
            }
            lexopt::Error::UnexpectedValue { option, value } => UsageError::UnexpectedValue {
                option,
                value: value.to_string_lossy().into_owned(),
            },
            other => UsageError::Other(other.to_string()),
        }
    }
}

/// Parse the command line, `args` without the program name: `std::env::args_os().skip(1)`.
/// `status` or `nbft` as the first word is a subcommand; anything else runs the daemon.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| *a == "status") {
        args.next();
        return parse_status(Parser::from_args(args));
    }
    if args.peek().is_some_and(|a| *a == "nbft") {
        args.next();
        return parse_nbft(args);
    }
    parse_run(Parser::from_args(args))
}

fn parse_run(mut parser: Parser) -> Result<Command, UsageError> {
    use lexopt::prelude::*;
    let mut a = Args::default();
    let mut conn = ConnectArgs::default();
    let mut config_file = None;
    let mut fabrics_config = None;
    let mut nbft_flag = None;
    while let Some(arg) = parser.next()? {
        if let Some((option, name)) = connect_option(&arg) {
            apply_connect_option(option, name, &mut parser, &mut conn)?;
            continue;
        }
        match arg {
            Short('A') | Long("autoconnect") => a.autoconnect = true,
            Short('K') | Long("keep") => a.keep = true,
            Short('v') | Long("verbose") => a.verbose = a.verbose.saturating_add(1),
            Short('S') | Long("silent") => a.silent = true,
            Short('C') | Long("config-file") => {
                config_file = Some(path(&mut parser, "--config-file")?)
            }
            Long("config") => fabrics_config = Some(path(&mut parser, "--config")?),
            Long("no-config") => a.no_config = true,
            Long("nbft") => {
                if nbft_flag == Some(false) {
                    return Err(UsageError::Conflict("--nbft", "--no-nbft"));
                }
                nbft_flag = Some(true)
            }
            Long("no-nbft") => {
                if nbft_flag == Some(true) {
                    return Err(UsageError::Conflict("--nbft", "--no-nbft"));
                }
                nbft_flag = Some(false)
            }
            Long("nbft-path") => a.nbft_path = Some(path(&mut parser, "--nbft-path")?),
            Long("owner") => a.owner = checked(&mut parser, "--owner", check_owner)?,
            Long("epcsd-poll-interval") => {
                a.epcsd_poll_interval = count(&mut parser, "--epcsd-poll-interval", 1)?
            }
            Long("state-dir") => a.state_dir = path(&mut parser, "--state-dir")?,
            Long("log") => a.log = log_target(&mut parser)?,
            Long("once") => a.once = true,
            Long("prune-grace") => a.prune_grace = count(&mut parser, "--prune-grace", 0)?,
            Long("dry-run") => a.dry_run = true,
            Long("cmdline") => a.cmdline = true,
            Long("no-mask-udev") => a.no_mask_udev = true,
            Long("sysfs-root") => a.sysfs = path(&mut parser, "--sysfs-root")?,
            Long("dev-root") => a.devfs = path(&mut parser, "--dev-root")?,
            Long("proc-root") => a.procfs = path(&mut parser, "--proc-root")?,
            Long("run-root") => a.run_root = path(&mut parser, "--run-root")?,
            Long("uevent-buffer") => a.uevent_buffer = count(&mut parser, "--uevent-buffer", 4096)?,
            Long("etc-dir") => a.etc_nvme = path(&mut parser, "--etc-dir")?,
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if nbft_flag == Some(false) && a.nbft_path.is_some() {
        return Err(UsageError::Conflict("--nbft-path", "--no-nbft"));
    }
    a.nbft = nbft_flag.unwrap_or(true);
    if a.verbose > 0 && a.silent {
        return Err(UsageError::Conflict("--verbose", "--silent"));
    }
    if config_file.is_some() && a.no_config {
        return Err(UsageError::Conflict("--config-file", "--no-config"));
    }
    if fabrics_config.is_some() && a.no_config {
        return Err(UsageError::Conflict("--config", "--no-config"));
    }
    a.config_file = config_file.unwrap_or_else(|| a.etc_nvme.join("discovery.conf"));
    a.fabrics_config = fabrics_config.unwrap_or_else(|| a.etc_nvme.join("nvme-fabrics.conf"));
    a.persistent = conn.persistent;
    a.opts = std::mem::take(&mut conn.opts);
    a.discovery = command_line_source(conn)?;
    if let Some(src) = &mut a.discovery {
        // Keys given with -a are meant for that discovery controller too.
        src.opts.dhchap_for_discovery =
            a.opts.dhchap_secret.is_some() || a.opts.dhchap_ctrl_secret.is_some();
    }
    Ok(Command::Run(Box::new(a)))
}

fn parse_status(mut parser: Parser) -> Result<Command, UsageError> {
    use lexopt::prelude::*;
    let mut s = StatusArgs::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('o') | Long("output-format") => s.output = output_format(&mut parser)?,
            Long("state-dir") => s.state_dir = path(&mut parser, "--state-dir")?,
            Long("sysfs-root") => s.sysfs = path(&mut parser, "--sysfs-root")?,
            Long("proc-root") => s.procfs = path(&mut parser, "--proc-root")?,
            Short('h') | Long("help") => return Ok(Command::Help),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Status(s))
}

/// `nbft show [OPTIONS]`; `nbft --help` is help too. `show` is the only action, as in nvme-cli's
/// nbft plugin, but it is required so that more can come without changing what a word means.
fn parse_nbft(mut args: impl Iterator<Item = OsString>) -> Result<Command, UsageError> {
    use lexopt::prelude::*;
    let mut n = NbftArgs::default();
    match args.next() {
        Some(a) if a == "show" => {}
        Some(a) if a == "cmdline" => n.cmdline = true,
        Some(a) if a == "-h" || a == "--help" => return Ok(Command::Help),
        Some(a) => {
            return Err(UsageError::Other(format!(
                "unknown nbft command '{}': expected show or cmdline",
                a.to_string_lossy().escape_debug()
            )));
        }
        None => return Err(UsageError::Other("nbft: expected show or cmdline".into())),
    }
    let mut parser = Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('o') | Long("output-format") if !n.cmdline => {
                n.output = output_format(&mut parser)?
            }
            Long("nbft-path") => n.nbft_path = path(&mut parser, "--nbft-path")?,
            Short('h') | Long("help") => return Ok(Command::Help),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Nbft(n))
}

fn output_format(parser: &mut Parser) -> Result<OutputFormat, UsageError> {
    let value = string(parser, "--output-format")?;
    match value.as_str() {
        "normal" => Ok(OutputFormat::Normal),
        "json" => Ok(OutputFormat::Json),
        _ => Err(invalid(
            "--output-format",
            &value,
            "expected normal or json",
        )),
    }
}

/// The registry's reader ([`crate::registry::Entry::parse`]) trims blanks and refuses '/' and
/// longer names, so such a name would not read back as ours; control characters would garble
/// every tool that shows the owner.
fn check_owner(name: &str) -> Result<(), &'static str> {
    const _: () = assert!(crate::registry::OWNER_MAX == 64);
    let ok = !name.is_empty()
        && name.len() <= crate::registry::OWNER_MAX
        && !name.contains('/')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err("expected 1 to 64 bytes without '/', whitespace or control characters")
    }
}

fn command_line_source(conn: ConnectArgs) -> Result<Option<DiscoverySource>, UsageError> {
    if !conn.has_address() {
        return Ok(None);
    }
    if conn.transport.is_none() {
        return Err(UsageError::Required {
            option: "--transport",
            context: Some("with --traddr, --trsvcid, --host-traddr or --host-iface".into()),
        });
    }
    conn.into_source().map(Some)
}

fn path(parser: &mut Parser, option: &str) -> Result<PathBuf, UsageError> {
    let value = parser.value()?;
    if value.is_empty() {
        return Err(invalid(option, "", "expected a path"));
    }
    Ok(PathBuf::from(value))
}

fn log_target(parser: &mut Parser) -> Result<Target, UsageError> {
    let value = string(parser, "--log")?;
    match value.as_str() {
        "stderr" => Ok(Target::Stderr),
        "kmsg" => Ok(Target::Kmsg),
        _ => Err(invalid("--log", &value, "expected stderr or kmsg")),
    }
}

fn invalid(option: &str, value: &str, expected: &str) -> UsageError {
    UsageError::InvalidValue {
        option: option.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

fn string(parser: &mut Parser, option: &str) -> Result<String, UsageError> {
    parser
        .value()?
        .into_string()
        .map_err(|raw| invalid(option, &raw.to_string_lossy(), "expected valid UTF-8"))
}

/// nvme-cli's connect-all options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectOption {
    Transport,
    Traddr,
    Trsvcid,
    HostTraddr,
    HostIface,
    Hostnqn,
    Hostid,
    NrIoQueues,
    NrWriteQueues,
    NrPollQueues,
    QueueSize,
    KeepAliveTmo,
    ReconnectDelay,
    CtrlLossTmo,
    FastIoFailTmo,
    Tos,
    DuplicateConnect,
    DisableSqflow,
    HdrDigest,
    DataDigest,
    Persistent,
    DhchapSecret,
    DhchapCtrlSecret,
    Tls,
    Keyring,
    TlsKey,
}

/// Short letter and long name as nvme-cli spells them (`fast_io_fail_tmo` with underscores; the
/// dashed spelling is accepted too, since every other option uses dashes). nvme-cli's -S and -C for
/// the DH-HMAC-CHAP keys are our --silent and --config-file: the keys have long names only.
/// `--tls-key` is also taken as `--tls_key`, nvme-cli 2's spelling.
const CONNECT_OPTIONS: [(Option<char>, &str, ConnectOption); 28] = [
    (Some('t'), "transport", ConnectOption::Transport),
    (Some('a'), "traddr", ConnectOption::Traddr),
    (Some('s'), "trsvcid", ConnectOption::Trsvcid),
    (Some('w'), "host-traddr", ConnectOption::HostTraddr),
    (Some('f'), "host-iface", ConnectOption::HostIface),
    (Some('q'), "hostnqn", ConnectOption::Hostnqn),
    (Some('I'), "hostid", ConnectOption::Hostid),
    (Some('i'), "nr-io-queues", ConnectOption::NrIoQueues),
    (Some('W'), "nr-write-queues", ConnectOption::NrWriteQueues),
    (Some('P'), "nr-poll-queues", ConnectOption::NrPollQueues),
    (Some('Q'), "queue-size", ConnectOption::QueueSize),
    (Some('k'), "keep-alive-tmo", ConnectOption::KeepAliveTmo),
    (Some('c'), "reconnect-delay", ConnectOption::ReconnectDelay),
    (Some('l'), "ctrl-loss-tmo", ConnectOption::CtrlLossTmo),
    (Some('F'), "fast_io_fail_tmo", ConnectOption::FastIoFailTmo),
    (None, "fast-io-fail-tmo", ConnectOption::FastIoFailTmo),
    (Some('T'), "tos", ConnectOption::Tos),
    (
        Some('D'),
        "duplicate-connect",
        ConnectOption::DuplicateConnect,
    ),
    (None, "disable-sqflow", ConnectOption::DisableSqflow),
    (Some('g'), "hdr-digest", ConnectOption::HdrDigest),
    (Some('G'), "data-digest", ConnectOption::DataDigest),
    (Some('p'), "persistent", ConnectOption::Persistent),
    (None, "dhchap-secret", ConnectOption::DhchapSecret),
    (None, "dhchap-ctrl-secret", ConnectOption::DhchapCtrlSecret),
    (None, "tls", ConnectOption::Tls),
    (None, "keyring", ConnectOption::Keyring),
    (None, "tls-key", ConnectOption::TlsKey),
    (None, "tls_key", ConnectOption::TlsKey),
];

fn connect_option(arg: &Arg<'_>) -> Option<(ConnectOption, &'static str)> {
    CONNECT_OPTIONS
        .iter()
        .find(|(short, long, _)| match arg {
            Arg::Short(c) => *short == Some(*c),
            Arg::Long(l) => l == long,
            Arg::Value(_) => false,
        })
        .map(|(_, long, option)| (*option, *long))
}

/// Parse connect-all options only: a discovery.conf line, or an rd.nvmf.discover entry.
pub fn parse_connect_args(mut parser: Parser) -> Result<ConnectArgs, UsageError> {
    let mut conn = ConnectArgs::default();
    while let Some(arg) = parser.next()? {
        match connect_option(&arg) {
            Some((option, name)) => apply_connect_option(option, name, &mut parser, &mut conn)?,
            None => return Err(arg.unexpected().into()),
        }
    }
    Ok(conn)
}

/// Read one connect-all option's value (if it takes one) into `conn`, with the kernel's range checks.
fn apply_connect_option(
    option: ConnectOption,
    long: &'static str,
    parser: &mut Parser,
    conn: &mut ConnectArgs,
) -> Result<(), UsageError> {
    use ConnectOption as O;
    let name = format!("--{long}");
    let n = &name;
    let o = &mut conn.opts;
    let p = parser;
    match option {
        O::Transport => {
            let value = string(p, n)?;
            let transport = Transport::from_name(&value)
                .ok_or_else(|| invalid(n, &value, "expected rdma, fc, tcp or loop"))?;
            conn.transport = Some(transport);
        }
        O::Traddr => conn.traddr = Some(checked(p, n, config::check_token_value)?),
        O::Trsvcid => conn.trsvcid = Some(checked(p, n, config::check_token_value)?),
        O::HostTraddr => conn.host_traddr = Some(checked(p, n, config::check_token_value)?),
        O::HostIface => conn.host_iface = Some(checked(p, n, config::check_token_value)?),
        O::Hostnqn => o.hostnqn = Some(checked(p, n, config::check_nqn)?),
        O::Hostid => o.hostid = Some(checked(p, n, config::check_uuid)?),
        O::NrIoQueues => o.nr_io_queues = Some(count(p, n, 1)?),
        O::NrWriteQueues => o.nr_write_queues = Some(count(p, n, 1)?),
        O::NrPollQueues => o.nr_poll_queues = Some(count(p, n, 1)?),
        O::QueueSize => o.queue_size = Some(number(p, n, 16, 1024)? as u32),
        O::KeepAliveTmo => o.keep_alive_tmo = Some(count(p, n, 0)?),
        O::ReconnectDelay => o.reconnect_delay = Some(count(p, n, 1)?),
        O::CtrlLossTmo => o.ctrl_loss_tmo = Some(number(p, n, -1, i32::MAX)?),
        O::FastIoFailTmo => o.fast_io_fail_tmo = Some(number(p, n, -1, i32::MAX)?),
        // The kernel rejects a negative tos; nvme-cli's -1 means "do not pass it".
        O::Tos => o.tos = Some(number(p, n, -1, 255)?).filter(|&tos| tos >= 0),
        O::DuplicateConnect => o.duplicate_connect = true,
        O::DisableSqflow => o.disable_sqflow = true,
        O::HdrDigest => o.hdr_digest = true,
        O::DataDigest => o.data_digest = true,
        O::Persistent => conn.persistent = true,
        O::DhchapSecret => o.dhchap_secret = Some(secret(p, n)?),
        O::DhchapCtrlSecret => o.dhchap_ctrl_secret = Some(secret(p, n)?),
        O::Tls => o.tls = true,
        O::Keyring => o.keyring = keyring(p, n)?,
        O::TlsKey => o.tls_key = Some(checked_map(p, n, crate::tls::parse_key_serial)?),
    }
    Ok(())
}

/// A DH-HMAC-CHAP key, or a file holding one: checked now, so a bad key is a usage error naming
/// the option (and, for a discovery.conf line, the line) but never quoting the key.
fn secret(parser: &mut Parser, option: &str) -> Result<crate::secret::Secret, UsageError> {
    let value = parser.value()?;
    let value = value
        .to_str()
        .ok_or_else(|| UsageError::Other(format!("{option}: the key is not valid UTF-8")))?;
    crate::secret::Secret::load(value, option).map_err(UsageError::Other)
}

/// `--keyring`: a serial, or `.nvme`, the kernel's own NVMe keyring (0: configured, and not
/// passed, as it is the kernel's default).
fn keyring(parser: &mut Parser, option: &str) -> Result<Option<u32>, UsageError> {
    let value = string(parser, option)?;
    if value == ".nvme" {
        return Ok(Some(0));
    }
    crate::tls::parse_key_serial(&value)
        .map(Some)
        .map_err(|expected| {
            invalid(
                option,
                &value,
                &format!("{expected}, or .nvme; other keyring names are not looked up"),
            )
        })
}

fn checked_map<T>(
    parser: &mut Parser,
    option: &str,
    check: fn(&str) -> Result<T, &'static str>,
) -> Result<T, UsageError> {
    let value = string(parser, option)?;
    check(&value).map_err(|expected| invalid(option, &value, expected))
}

fn checked(
    parser: &mut Parser,
    option: &str,
    check: fn(&str) -> Result<(), &'static str>,
) -> Result<String, UsageError> {
    let value = string(parser, option)?;
    match check(&value) {
        Ok(()) => Ok(value),
        Err(expected) => Err(invalid(option, &value, expected)),
    }
}

/// A decimal integer in `min..=max`; the kernel reads these with match_int, so they fit an i32.
fn number(parser: &mut Parser, option: &str, min: i32, max: i32) -> Result<i32, UsageError> {
    let value = string(parser, option)?;
    let n: i32 = value
        .parse()
        .map_err(|_| invalid(option, &value, "expected a number"))?;
    if n < min || n > max {
        let expected = if max == i32::MAX {
            format!("expected a number of at least {min}")
        } else {
            format!("expected a number from {min} to {max}")
        };
        return Err(invalid(option, &value, &expected));
    }
    Ok(n)
}

fn count(parser: &mut Parser, option: &str, min: i32) -> Result<u32, UsageError> {
    let n = number(parser, option, min, i32::MAX)?;
    Ok(n.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Args, UsageError> {
        match parse(args.iter().map(OsString::from))? {
            Command::Run(args) => Ok(*args),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        run(args).unwrap_err().to_string()
    }

    #[test]
    fn tls_options_are_serials_and_apply_to_every_connection() {
        let a = run(&["--tls", "--keyring", "12345", "--tls-key", "0x2a"]).unwrap();
        assert!(a.opts.tls && a.opts.tls_always() && a.opts.tls_configured());
        assert_eq!((a.opts.keyring, a.opts.tls_key), (Some(12345), Some(42)));
        let a = run(&["--keyring", "7"]).unwrap();
        assert!(!a.opts.tls_always() && a.opts.tls_configured());
        let e = err(&["--tls-key", "-1"]);
        assert!(
            e.contains("invalid value '-1' for --tls-key: expected a key serial"),
            "{e}"
        );
        let e = err(&["--keyring", "0"]);
        assert!(e.contains("for --keyring"), "{e}");
    }

    #[test]
    fn dhchap_keys_are_checked_and_never_quoted() {
        let key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        let a = run(&["--dhchap-secret", key, "-t", "tcp", "-a", "10.0.0.1"]).unwrap();
        assert_eq!(a.opts.dhchap_secret.as_ref().map(|s| s.expose()), Some(key));
        assert!(a.opts.dhchap_ctrl_secret.is_none());
        let d = a.discovery.unwrap();
        assert!(
            d.opts.dhchap_for_discovery,
            "a key given with -a is meant for that controller"
        );
        let a = run(&["--dhchap-ctrl-secret", key]).unwrap();
        assert!(a.opts.dhchap_ctrl_secret.is_some() && a.discovery.is_none());
        let bad = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:";
        let e = err(&["--dhchap-secret", bad]);
        assert!(
            e.starts_with("--dhchap-secret: the DH-HMAC-CHAP key"),
            "{e}"
        );
        assert!(e.contains("CRC") && !e.contains("AAECAw"), "{e}");
        // nvme-cli's short letters are ours for other things.
        assert!(run(&["-S"]).unwrap().silent);
    }

    #[test]
    fn defaults() {
        let a = run(&[]).unwrap();
        assert_eq!(a, Args::default());
        assert_eq!(a.config_file, PathBuf::from("/etc/nvme/discovery.conf"));
        assert_eq!(
            a.fabrics_config,
            PathBuf::from("/etc/nvme/nvme-fabrics.conf")
        );
        assert_eq!(a.owner, "nvme-monitor");
        assert_eq!(a.epcsd_poll_interval, 15);
        assert_eq!(a.hostnqn_path(), PathBuf::from("/etc/nvme/hostnqn"));
        assert_eq!(a.hostid_path(), PathBuf::from("/etc/nvme/hostid"));
        assert_eq!(a.log_level(), Level::Info);
        assert!(a.discovery.is_none());
    }

    #[test]
    fn monitor_flags_long_and_short() {
        let long = run(&[
            "--autoconnect",
            "--persistent",
            "--keep",
            "--verbose",
            "--no-config",
            "--once",
            "--dry-run",
            "--cmdline",
            "--no-mask-udev",
        ])
        .unwrap();
        let short = run(&["-ApK", "-v", "--no-config", "--once", "--dry-run"]).unwrap();
        for a in [&long, &short] {
            assert!(a.autoconnect && a.persistent && a.keep && a.no_config && a.once && a.dry_run);
            assert_eq!(a.verbose, 1);
            assert_eq!(a.log_level(), Level::Debug);
        }
        assert!(long.cmdline && long.no_mask_udev);
        assert_eq!(run(&["-vvv"]).unwrap().verbose, 3);
        assert_eq!(run(&["-S"]).unwrap().log_level(), Level::Warn);
        assert!(run(&["--silent"]).unwrap().silent);
    }

    #[test]
    fn path_options_in_every_form() {
        let a = run(&[
            "-C",
            "/a.conf",
            "--state-dir=/s",
            "--sysfs-root",
            "/t/sys",
            "--dev-root=/t/dev",
            "--proc-root=/t/proc",
            "--run-root",
            "/t/run",
            "--etc-dir",
            "/t/etc",
        ])
        .unwrap();
        assert_eq!(a.config_file, PathBuf::from("/a.conf"));
        assert_eq!(a.state_dir, PathBuf::from("/s"));
        assert_eq!(a.sysfs, PathBuf::from("/t/sys"));
        assert_eq!(a.devfs, PathBuf::from("/t/dev"));
        assert_eq!(a.procfs, PathBuf::from("/t/proc"));
        assert_eq!(a.run_root, PathBuf::from("/t/run"));
        // The udev mask's /run does not follow --state-dir.
        assert_eq!(
            run(&["--state-dir=/t/s"]).unwrap().run_root,
            PathBuf::from("/run")
        );
        assert_eq!(a.hostnqn_path(), PathBuf::from("/t/etc/hostnqn"));
        assert_eq!(run(&["-C/b"]).unwrap().config_file, PathBuf::from("/b"));
        assert_eq!(
            run(&["--config-file=/c"]).unwrap().config_file,
            PathBuf::from("/c")
        );
        // Without -C the config file follows --etc-dir, so a test tree is self-contained.
        let a = run(&["--etc-dir=/t/etc"]).unwrap();
        assert_eq!(a.config_file, PathBuf::from("/t/etc/discovery.conf"));
        assert_eq!(a.fabrics_config, PathBuf::from("/t/etc/nvme-fabrics.conf"));
        assert_eq!(
            err(&["--state-dir="]),
            "invalid value '' for --state-dir: expected a path"
        );
    }

    #[test]
    fn fabrics_config_is_its_own_option() {
        let a = run(&["--config", "/f.conf", "--etc-dir=/t"]).unwrap();
        assert_eq!(a.fabrics_config, PathBuf::from("/f.conf"));
        // -C still means discovery.conf, and each keeps its default when only the other is given.
        assert_eq!(a.config_file, PathBuf::from("/t/discovery.conf"));
        let a = run(&["--config=/f", "-C", "/d"]).unwrap();
        assert_eq!(
            (a.fabrics_config, a.config_file),
            (PathBuf::from("/f"), PathBuf::from("/d"))
        );
        let a = run(&["-C", "/d"]).unwrap();
        assert_eq!(
            a.fabrics_config,
            PathBuf::from("/etc/nvme/nvme-fabrics.conf")
        );
        assert_eq!(
            err(&["--config="]),
            "invalid value '' for --config: expected a path"
        );
        assert_eq!(err(&["--config"]), "missing value for --config");
        assert_eq!(
            err(&["--config", "/f", "--no-config"]),
            "--config cannot be used with --no-config"
        );
        assert_eq!(
            err(&["--no-config", "--config=/f"]),
            "--config cannot be used with --no-config"
        );
        assert!(run(&["--no-config"]).unwrap().no_config);
    }

    #[test]
    fn nbft_options() {
        let a = run(&[]).unwrap();
        assert!(a.nbft, "on by default: used when a table exists");
        assert_eq!(a.nbft_path, None);
        assert!(!run(&["--no-nbft"]).unwrap().nbft);
        assert!(run(&["--nbft"]).unwrap().nbft);
        assert_eq!(
            run(&["--nbft-path", "/t"]).unwrap().nbft_path,
            Some(PathBuf::from("/t"))
        );
        for conflict in [&["--nbft", "--no-nbft"][..], &["--no-nbft", "--nbft"]] {
            assert_eq!(err(conflict), "--nbft cannot be used with --no-nbft");
        }
        assert_eq!(
            err(&["--no-nbft", "--nbft-path=/t"]),
            "--nbft-path cannot be used with --no-nbft"
        );
        assert_eq!(err(&["--nbft-path"]), "missing value for --nbft-path");
    }

    #[test]
    fn owner_name() {
        assert_eq!(run(&["--owner", "boot-1"]).unwrap().owner, "boot-1");
        assert_eq!(run(&["--owner=nbft.x_y"]).unwrap().owner, "nbft.x_y");
        let longest = "o".repeat(64);
        assert_eq!(run(&["--owner", &longest]).unwrap().owner, longest);
        // Multi-byte: the limit is in bytes, as the registry's reader counts.
        assert_eq!(run(&["--owner=é"]).unwrap().owner, "é");
        let why = "expected 1 to 64 bytes without '/', whitespace or control characters";
        for bad in [
            "",
            "a/b",
            "/",
            "two words",
            " lead",
            "tab\there",
            "new\nline",
            "nbsp\u{a0}",
            "bell\u{7}",
            &"o".repeat(65),
            &"é".repeat(33),
        ] {
            let want = format!("invalid value '{}' for --owner: {why}", bad.escape_debug());
            assert_eq!(err(&["--owner", bad]), want, "{bad:?}");
            assert_eq!(err(&[&format!("--owner={bad}")]), want, "{bad:?}");
        }
        assert_eq!(err(&["--owner"]), "missing value for --owner");
    }

    #[test]
    fn epcsd_poll_interval() {
        assert_eq!(
            run(&["--epcsd-poll-interval", "1"])
                .unwrap()
                .epcsd_poll_interval,
            1
        );
        assert_eq!(
            run(&["--epcsd-poll-interval=1440"])
                .unwrap()
                .epcsd_poll_interval,
            1440
        );
        for (bad, why) in [
            ("0", "expected a number of at least 1"),
            ("-1", "expected a number of at least 1"),
            ("15m", "expected a number"),
            ("", "expected a number"),
            ("99999999999", "expected a number"),
        ] {
            assert_eq!(
                err(&["--epcsd-poll-interval", bad]),
                format!("invalid value '{bad}' for --epcsd-poll-interval: {why}")
            );
        }
    }

    fn status(args: &[&str]) -> Result<StatusArgs, UsageError> {
        let argv = std::iter::once("status").chain(args.iter().copied());
        match parse(argv.map(OsString::from))? {
            Command::Status(s) => Ok(s),
            other => panic!("expected Status, got {other:?}"),
        }
    }

    #[test]
    fn status_subcommand() {
        let s = status(&[]).unwrap();
        assert_eq!(s, StatusArgs::default());
        assert_eq!(s.output, OutputFormat::Normal);
        assert_eq!(s.state_dir, PathBuf::from("/run/nvme-monitor"));
        assert_eq!(
            (s.sysfs, s.procfs),
            (PathBuf::from("/sys"), PathBuf::from("/proc"))
        );
        for form in [
            &["-o", "json"][..],
            &["-ojson"],
            &["--output-format", "json"],
            &["--output-format=json"],
        ] {
            assert_eq!(status(form).unwrap().output, OutputFormat::Json, "{form:?}");
        }
        assert_eq!(
            status(&["-o", "json", "-o", "normal"]).unwrap().output,
            OutputFormat::Normal
        );
        let s = status(&[
            "--state-dir=/t/s",
            "--sysfs-root",
            "/t/sys",
            "--proc-root=/t/proc",
        ])
        .unwrap();
        assert_eq!(s.state_dir, PathBuf::from("/t/s"));
        assert_eq!(s.sysfs, PathBuf::from("/t/sys"));
        assert_eq!(s.procfs, PathBuf::from("/t/proc"));
        let parse_ = |args: &[&str]| parse(args.iter().map(OsString::from));
        assert_eq!(parse_(&["status", "--help"]), Ok(Command::Help));
        assert_eq!(parse_(&["status", "-h"]), Ok(Command::Help));
    }

    fn nbft(args: &[&str]) -> Result<NbftArgs, UsageError> {
        let argv = ["nbft", "show"].into_iter().chain(args.iter().copied());
        match parse(argv.map(OsString::from))? {
            Command::Nbft(n) => Ok(n),
            other => panic!("expected Nbft, got {other:?}"),
        }
    }

    #[test]
    fn nbft_show_subcommand() {
        let n = nbft(&[]).unwrap();
        assert_eq!(n, NbftArgs::default());
        assert_eq!(n.output, OutputFormat::Normal);
        assert_eq!(n.nbft_path, PathBuf::from("/sys/firmware/acpi/tables"));
        for form in [
            &["-o", "json"][..],
            &["-ojson"],
            &["--output-format", "json"],
            &["--output-format=json"],
        ] {
            assert_eq!(nbft(form).unwrap().output, OutputFormat::Json, "{form:?}");
        }
        let n = nbft(&["--nbft-path", "/t/tables", "-o", "normal"]).unwrap();
        assert_eq!(n.nbft_path, PathBuf::from("/t/tables"));
        assert_eq!(n.output, OutputFormat::Normal);
        assert_eq!(
            nbft(&["--nbft-path=/x"]).unwrap().nbft_path,
            PathBuf::from("/x")
        );
        let parse_ = |args: &[&str]| parse(args.iter().map(OsString::from));
        assert_eq!(parse_(&["nbft", "show", "--help"]), Ok(Command::Help));
        assert_eq!(parse_(&["nbft", "show", "-h"]), Ok(Command::Help));
        assert_eq!(parse_(&["nbft", "--help"]), Ok(Command::Help));
    }

    #[test]
    fn nbft_errors() {
        let nerr = |args: &[&str]| nbft(args).unwrap_err().to_string();
        assert_eq!(
            nerr(&["-o", "binary"]),
            "invalid value 'binary' for --output-format: expected normal or json"
        );
        assert_eq!(nerr(&["--nbft-path"]), "missing value for --nbft-path");
        assert_eq!(
            nerr(&["--nbft-path="]),
            "invalid value '' for --nbft-path: expected a path"
        );
        assert_eq!(nerr(&["--state-dir=/s"]), "unknown option '--state-dir'");
        assert_eq!(nerr(&["-A"]), "unknown option '-A'");
        assert_eq!(nerr(&["extra"]), "unexpected argument 'extra'");
        let perr = |args: &[&str]| {
            parse(args.iter().map(OsString::from))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(perr(&["nbft"]), "nbft: expected show or cmdline");
        assert_eq!(
            perr(&["nbft", "list"]),
            "unknown nbft command 'list': expected show or cmdline"
        );
        match parse(["nbft", "cmdline", "--nbft-path", "/t"].map(OsString::from)) {
            Ok(Command::Nbft(n)) => assert!(n.cmdline && n.nbft_path.as_os_str() == "/t"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            perr(&["nbft", "cmdline", "-o", "json"]),
            "unknown option '-o'"
        );
        // The options come after the action, as in nvme-cli.
        assert_eq!(
            perr(&["nbft", "-o", "json", "show"]),
            "unknown nbft command '-o': expected show or cmdline"
        );
        // Only as the first word: anywhere else it is a stray argument to the daemon.
        assert_eq!(err(&["-A", "nbft"]), "unexpected argument 'nbft'");
    }

    #[test]
    fn status_errors() {
        let serr = |args: &[&str]| status(args).unwrap_err().to_string();
        assert_eq!(
            serr(&["-o", "binary"]),
            "invalid value 'binary' for --output-format: expected normal or json"
        );
        assert_eq!(
            serr(&["--output-format=JSON"]),
            "invalid value 'JSON' for --output-format: expected normal or json"
        );
        assert_eq!(serr(&["-o"]), "missing value for -o");
        assert_eq!(
            serr(&["--output-format"]),
            "missing value for --output-format"
        );
        assert_eq!(
            serr(&["--state-dir="]),
            "invalid value '' for --state-dir: expected a path"
        );
        // Daemon options mean nothing to status, and a second word is not a subcommand.
        assert_eq!(serr(&["-A"]), "unknown option '-A'");
        assert_eq!(serr(&["--owner=x"]), "unknown option '--owner'");
        assert_eq!(serr(&["extra"]), "unexpected argument 'extra'");
        // Only as the first word: anywhere else it is a stray argument to the daemon.
        assert_eq!(err(&["-A", "status"]), "unexpected argument 'status'");
    }

    #[test]
    fn log_target() {
        assert_eq!(run(&["--log", "kmsg"]).unwrap().log, Target::Kmsg);
        assert_eq!(run(&["--log=stderr"]).unwrap().log, Target::Stderr);
        assert_eq!(
            err(&["--log=syslog"]),
            "invalid value 'syslog' for --log: expected stderr or kmsg"
        );
    }

    #[test]
    fn every_connection_option_in_every_form() {
        let forms: [fn(&str, &str) -> Vec<String>; 3] = [
            |long, v| vec![format!("--{long}"), v.to_owned()],
            |long, v| vec![format!("--{long}={v}")],
            |_, v| vec![v.to_owned()],
        ];
        let cases: [(char, &str, &str); 14] = [
            ('q', "hostnqn", "nqn.2014-08.org.nvmexpress:uuid:1"),
            ('I', "hostid", "2b9f0ff4-4fe6-4d56-9ab3-2d5a1c3f1a5e"),
            ('i', "nr-io-queues", "4"),
            ('W', "nr-write-queues", "2"),
            ('P', "nr-poll-queues", "1"),
            ('Q', "queue-size", "128"),
            ('k', "keep-alive-tmo", "30"),
            ('c', "reconnect-delay", "10"),
            ('l', "ctrl-loss-tmo", "-1"),
            ('F', "fast_io_fail_tmo", "5"),
            ('T', "tos", "8"),
            ('t', "transport", "loop"),
            ('s', "trsvcid", "none"),
            ('a', "traddr", "1"),
        ];
        let expect = ConnectOpts {
            hostnqn: Some("nqn.2014-08.org.nvmexpress:uuid:1".into()),
            hostid: Some("2b9f0ff4-4fe6-4d56-9ab3-2d5a1c3f1a5e".into()),
            nr_io_queues: Some(4),
            nr_write_queues: Some(2),
            nr_poll_queues: Some(1),
            queue_size: Some(128),
            keep_alive_tmo: Some(30),
            reconnect_delay: Some(10),
            ctrl_loss_tmo: Some(-1),
            fast_io_fail_tmo: Some(5),
            tos: Some(8),
            ..Default::default()
        };
        for (i, form) in forms.iter().enumerate() {
            let mut argv = Vec::new();
            for (short, long, value) in cases {
                if i == 2 {
                    argv.push(format!("-{short}"));
                }
                argv.extend(form(long, value));
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let a = run(&argv).unwrap();
            assert_eq!(a.opts, expect, "form {i}");
            let d = a.discovery.unwrap();
            assert_eq!(d.addr.to_string(), "loop traddr=1");
        }
        let a = run(&["-D", "--disable-sqflow", "-g", "-G"]).unwrap();
        assert!(a.opts.duplicate_connect && a.opts.disable_sqflow);
        assert!(a.opts.hdr_digest && a.opts.data_digest);
        let a = run(&["--duplicate-connect", "--hdr-digest", "--data-digest"]).unwrap();
        assert!(a.opts.duplicate_connect && a.opts.hdr_digest && a.opts.data_digest);
        let a = run(&[
            "-i8",
            "-s=4420",
            "--fast-io-fail-tmo=-1",
            "-ttcp",
            "-a",
            "h",
        ])
        .unwrap();
        assert_eq!(a.opts.nr_io_queues, Some(8));
        assert_eq!(a.opts.fast_io_fail_tmo, Some(-1));
        assert_eq!(a.discovery.unwrap().addr.trsvcid.as_str(), "4420");
    }

    #[test]
    fn discovery_controller_from_the_command_line() {
        let a = run(&["-t", "tcp", "-a", "192.168.1.3", "-w", "192.168.1.2", "-p"]).unwrap();
        let d = a.discovery.unwrap();
        assert_eq!(
            d.addr.to_string(),
            "tcp traddr=192.168.1.3,trsvcid=8009,host_traddr=192.168.1.2"
        );
        assert!(d.persistent && a.persistent);
        let a = run(&["-t", "rdma", "-a", "10.0.0.1", "-q", "nqn.h"]).unwrap();
        let d = a.discovery.unwrap();
        assert_eq!(d.addr.trsvcid.as_str(), "4420");
        // The command line's options are everyone's defaults, not this source's own.
        assert!(d.addr.hostnqn.is_empty());
        assert_eq!(d.opts, ConnectOpts::default());
        assert_eq!(a.opts.hostnqn.as_deref(), Some("nqn.h"));
        let a = run(&["-t", "tcp", "-a", "h", "-f", "eth0", "-s", "4420"]).unwrap();
        assert_eq!(
            a.discovery.unwrap().addr.to_string(),
            "tcp traddr=h,trsvcid=4420,host_iface=eth0"
        );
        let fc = [
            "-t",
            "fc",
            "-a",
            "nn-0x200400A098D85236:pn-0x201400a098d85236",
            "-w",
            "nn-0x200000109b7db455:pn-0x100000109b7db455",
        ];
        let d = run(&fc).unwrap().discovery.unwrap();
        assert_eq!(
            d.addr.traddr.as_str(),
            "nn-0x200400a098d85236:pn-0x201400a098d85236"
        );
        assert!(d.addr.trsvcid.is_empty());
    }

    #[test]
    fn address_errors_name_the_option() {
        assert_eq!(err(&["-t", "tcp"]), "--traddr is required for tcp");
        assert_eq!(
            err(&["-a", "1.2.3.4"]),
            "--transport is required with --traddr, --trsvcid, --host-traddr or --host-iface"
        );
        assert_eq!(
            err(&[
                "-t",
                "fc",
                "-a",
                "nn-0x200400a098d85236:pn-0x201400a098d85236"
            ]),
            "--host-traddr is required for fc"
        );
        assert_eq!(
            err(&["-t", "fc", "-a", "1.2.3.4", "-w", "x"]),
            "invalid value '1.2.3.4' for --traddr: expected nn-0x<16 hex digits>:pn-0x<16 hex digits>"
        );
        assert_eq!(
            err(&["-t", "rdma", "-a", "h", "-f", "ib0"]),
            "invalid value 'ib0' for --host-iface: not used by the rdma transport"
        );
        assert_eq!(
            err(&["-t", "tcp", "-a", "h", "-s", "http"]),
            "invalid value 'http' for --trsvcid: expected a port number from 1 to 65535"
        );
        assert_eq!(
            err(&["-t", "udp", "-a", "h"]),
            "invalid value 'udp' for --transport: expected rdma, fc, tcp or loop"
        );
        assert_eq!(
            err(&["-t", "tcp", "-a", "h,nqn=x"]),
            "invalid value 'h,nqn=x' for --traddr: expected printable ASCII without spaces, ',' or '='"
        );
        let long = "x".repeat(300);
        assert_eq!(
            err(&["-t", "tcp", "-a", &long]),
            format!("invalid value '{long}' for --traddr: expected at most 256 bytes")
        );
        assert!(run(&["-t", "loop"]).is_ok());
    }

    #[test]
    fn each_wrong_value_names_the_option() {
        let cases: [(&str, &str, &str); 14] = [
            ("--nr-io-queues", "abc", "expected a number"),
            ("--nr-io-queues", "0", "expected a number of at least 1"),
            ("--nr-write-queues", "0", "expected a number of at least 1"),
            ("--nr-poll-queues", "-1", "expected a number of at least 1"),
            ("--queue-size", "8", "expected a number from 16 to 1024"),
            ("--queue-size", "2048", "expected a number from 16 to 1024"),
            ("--keep-alive-tmo", "-5", "expected a number of at least 0"),
            ("--reconnect-delay", "0", "expected a number of at least 1"),
            ("--ctrl-loss-tmo", "-2", "expected a number of at least -1"),
            ("--fast_io_fail_tmo", "x", "expected a number"),
            ("--tos", "256", "expected a number from -1 to 255"),
            ("--tos", "99999999999", "expected a number"),
            (
                "--hostnqn",
                "host1",
                "expected an NQN starting with 'nqn.', at most 223 bytes",
            ),
            (
                "--hostid",
                "1234",
                "expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
            ),
        ];
        for (option, value, expected) in cases {
            let want = format!("invalid value '{value}' for {option}: {expected}");
            assert_eq!(err(&[option, value]), want);
            assert_eq!(err(&[&format!("{option}={value}")]), want);
        }
        let long_nqn = format!("nqn.{}", "x".repeat(220));
        assert!(err(&["-q", &long_nqn]).contains("for --hostnqn"));
        // A short option is reported by its long name.
        assert_eq!(
            err(&["-i", "abc"]),
            "invalid value 'abc' for --nr-io-queues: expected a number"
        );
    }

    #[test]
    fn tos_minus_one_means_transport_default() {
        assert_eq!(run(&["-T", "-1"]).unwrap().opts.tos, None);
        assert_eq!(run(&["--tos=0"]).unwrap().opts.tos, Some(0));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err(&["--frob"]), "unknown option '--frob'");
        assert_eq!(err(&["-x"]), "unknown option '-x'");
        assert_eq!(err(&["extra"]), "unexpected argument 'extra'");
        assert_eq!(err(&["--traddr"]), "missing value for --traddr");
        assert_eq!(
            err(&["--persistent=yes"]),
            "unexpected value 'yes' for --persistent: it takes none"
        );
        assert_eq!(err(&["-v", "-S"]), "--verbose cannot be used with --silent");
        assert_eq!(
            err(&["-C", "/x", "--no-config"]),
            "--config-file cannot be used with --no-config"
        );
    }

    #[test]
    fn help_and_version() {
        let parse_ = |args: &[&str]| parse(args.iter().map(OsString::from));
        assert_eq!(parse_(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_(&["-v", "-h"]), Ok(Command::Help));
        assert_eq!(parse_(&["--version"]), Ok(Command::Version));
        assert_eq!(parse_(&["-V"]), Ok(Command::Version));
        assert!(VERSION.starts_with("nvme-monitor "));
    }

    #[test]
    fn usage_lists_every_option() {
        for (short, long, _) in CONNECT_OPTIONS {
            // The second spellings.
            if long == "fast-io-fail-tmo" || long == "tls_key" {
                continue;
            }
            assert!(
                USAGE.contains(&format!("--{long} ")) || USAGE.contains(&format!("--{long}\n")),
                "{long}"
            );
            if let Some(c) = short {
                assert!(USAGE.contains(&format!("-{c}, --{long}")), "{long}");
            }
        }
        for option in [
            "-A, --autoconnect",
            "-p, --persistent",
            "-K, --keep",
            "-v, --verbose",
            "-S, --silent",
            "-C, --config-file",
            "--config FILE",
            "--no-config",
            "--owner NAME",
            "--epcsd-poll-interval MIN",
            "--state-dir",
            "--log stderr|kmsg",
            "--once",
            "--dry-run",
            "--cmdline",
            "--no-mask-udev",
            "--sysfs-root",
            "--dev-root",
            "--proc-root",
            "--run-root",
            "--uevent-buffer",
            "--etc-dir",
            "-h, --help",
            "-V, --version",
            "Testing:",
            "nvme-monitor status [-o normal|json]",
            "nvme-monitor nbft show [-o normal|json] [--nbft-path DIR]",
            "--nbft-path DIR",
            "-o, --output-format FMT",
        ] {
            assert!(USAGE.contains(option), "{option}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            [EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_DISCOVERY_FAILED],
            [0, 1, 2, 3]
        );
    }
}
