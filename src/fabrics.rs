//! /dev/nvme-fabrics: build the option string, learn which tokens the kernel knows, create controllers.
//!
//! Every value that goes into an option string comes from outside the process (configuration, a
//! uevent, a REMOTE discovery log page). The kernel splits the string at `,` and `\n` and each piece
//! at `=`, so a value holding one of those could add an option of its own choosing (`hostnqn=...`).
//! [`check_value`] refuses them; [`build_options`] runs it on every value.
//!
//! Token policy, in this order:
//! 1. Tokens the transport does not take (`hdr_digest` for fc, `tos` for loop...) are left out with a
//!    debug line: the kernel answers EINVAL to the whole string otherwise, and options from the
//!    command line apply to every transport.
//! 2. Tokens the kernel says it knows are sent.
//! 3. Tokens that change which host, port or path is used, or data integrity ([`ESSENTIAL`]), are
//!    never dropped: if the kernel's list lacks one, the connect is refused. On a kernel that gives
//!    no list (< 5.17) they are sent anyway and the kernel's EINVAL tells the truth.
//! 4. Other tokens (queue counts, timeouts, tos...) the kernel lacks are left out with a warning.
//!
//! # References
//! - drivers/nvme/host/fabrics.c: `opt_tokens`, `nvmf_parse_options`, `nvmf_dev_show` (the token
//!   list read before a write, since 5.17), `NVMF_ALLOWED_OPTS`, `nvmf_host_add`
//! - drivers/nvme/host/{tcp,rdma,fc}.c, drivers/nvme/target/loop.c: `allowed_opts`
//! - libnvme src/nvme/fabrics.c: `build_options`, `__nvmf_supported_options`, `__nvmf_add_ctrl`
//! - nvme-cli fabrics.c: persistent discovery controllers get keep_alive_tmo 30 unless given

use std::fmt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::addr::{
    HOST_IFACE_MAX, HOST_TRADDR_MAX, NQN_MAX, TRSVCID_MAX, Transport, TransportAddr,
};
use crate::error::{Context, Error, Result};
use crate::opts::ConnectOpts;
use crate::secret::Secret;

/// The well-known discovery subsystem NQN.
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// nvme-cli's keep-alive timeout for a persistent discovery controller, in seconds.
pub const PERSISTENT_DISCOVERY_KATO: u32 = 30;

/// The kernel refuses writes longer than a page (ENOMEM); 4 KiB is the smallest page.
pub const OPTIONS_MAX: usize = 4096;

/// Longest traddr we pass on (the discovery log field is 256 bytes, padded).
pub const TRADDR_VALUE_MAX: usize = 255;

/// A hostid is a UUID string (the kernel runs uuid_parse on it).
pub const HOSTID_MAX: usize = 36;

/// Why a value cannot go into an option string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueProblem {
    Empty,
    TooLong {
        len: usize,
        max: usize,
    },
    /// `,` `=` newline or NUL: they split options or end the string.
    Separator(u8),
    /// Control bytes, DEL and anything outside ASCII.
    NotPrintable(u8),
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValueProblem::Empty => f.write_str("is empty"),
            ValueProblem::TooLong { len, max } => {
                write!(f, "is {len} bytes long, at most {max} allowed")
            }
            ValueProblem::Separator(b) => match b {
                b'\n' => f.write_str("contains '\\n'"),
                0 => f.write_str("contains '\\0'"),
                b => write!(f, "contains '{}'", b as char),
            },
            ValueProblem::NotPrintable(b) => {
                write!(f, "contains the non-printable or non-ASCII byte 0x{b:02x}")
            }
        }
    }
}

/// Longest value accepted for `field` (an option token or a discovery log field name).
pub fn max_len(field: &str) -> usize {
    match field {
        "nqn" | "subnqn" | "hostnqn" => NQN_MAX,
        "trsvcid" => TRSVCID_MAX,
        "host_traddr" => HOST_TRADDR_MAX,
        "host_iface" => HOST_IFACE_MAX,
        "hostid" => HOSTID_MAX,
        _ => TRADDR_VALUE_MAX,
    }
}

/// What is wrong with `value` as `field`, or `None` if it may go into an option string. Allocation-free.
pub fn value_problem(field: &str, value: &[u8]) -> Option<ValueProblem> {
    if value.is_empty() {
        return Some(ValueProblem::Empty);
    }
    let max = max_len(field);
    if value.len() > max {
        return Some(ValueProblem::TooLong {
            len: value.len(),
            max,
        });
    }
    value.iter().find_map(|&b| match b {
        b',' | b'=' | b'\n' | 0 => Some(ValueProblem::Separator(b)),
        0x20..=0x7e => None,
        _ => Some(ValueProblem::NotPrintable(b)),
    })
}

/// Refuse a value that could smuggle an option, end the string, or is longer than `field` allows.
pub fn check_value(field: &'static str, value: &str) -> Result<()> {
    match value_problem(field, value.as_bytes()) {
        None => Ok(()),
        Some(p) => Err(Error::invalid(
            format!(
                "pass {field} \"{}\" to the kernel",
                escape_preview(value.as_bytes())
            ),
            p.to_string(),
        )),
    }
}

/// `value` escaped for a log line, cut after 64 bytes.
pub(crate) fn escape_preview(value: &[u8]) -> String {
    let mut s: String = value
        .iter()
        .take(64)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if value.len() > 64 {
        s.push_str("...");
    }
    s
}

/// Every token nvme-monitor knows about, in kernel `opt_tokens` order (6.12, plus `concat` from
/// 6.15); the position is the bit in [`SupportedTokens`].
const TOKENS: &str = "transport traddr trsvcid nqn queue_size nr_io_queues reconnect_delay \
    ctrl_loss_tmo keep_alive_tmo hostnqn host_traddr host_iface hostid duplicate_connect \
    disable_sqflow hdr_digest data_digest nr_write_queues nr_poll_queues tos keyring tls_key \
    fast_io_fail_tmo discovery dhchap_secret dhchap_ctrl_secret tls concat";

/// Assumed when the kernel gives no list (< 5.17): what every kernel since 5.4 accepts. Left out
/// compared to 5.17: `fast_io_fail_tmo` (5.10), `host_iface` (5.14), `discovery`.
const BUILTIN_TOKENS: &str = "transport traddr trsvcid nqn queue_size nr_io_queues \
    reconnect_delay ctrl_loss_tmo keep_alive_tmo hostnqn host_traddr hostid duplicate_connect \
    disable_sqflow hdr_digest data_digest nr_write_queues nr_poll_queues tos";

/// Tokens that are never silently dropped: without them the controller would be a different one
/// (other host identity, other port or path) or carry data without the digests asked for.
pub const ESSENTIAL: &str = "nqn transport traddr trsvcid host_traddr host_iface hostnqn hostid \
    hdr_digest data_digest";

/// The TLS tokens: never dropped (a connection in the clear instead is not what was asked).
const TLS_TOKENS: &str = "tls keyring tls_key";

/// Is `token` one of the space-separated `list`?
fn listed(list: &str, token: &str) -> bool {
    list.split(' ').any(|t| t == token)
}

fn token_bit(token: &str) -> Option<u64> {
    TOKENS
        .split(' ')
        .position(|t| t == token)
        .map(|i| 1u64 << i)
}

/// The option tokens this kernel accepts in a connect string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedTokens {
    mask: u64,
    reported: bool,
}

impl SupportedTokens {
    /// The conservative set assumed when the kernel does not report one (see `BUILTIN_TOKENS`).
    pub fn builtin() -> SupportedTokens {
        let mask = BUILTIN_TOKENS
            .split(' ')
            .filter_map(token_bit)
            .fold(0, |m, b| m | b);
        SupportedTokens {
            mask,
            reported: false,
        }
    }

    /// From the read before any write: `instance=-1,cntlid=-1,transport=%s,...,discovery,...`.
    ///
    /// Tokens may carry a `=%s`/`=%d` pattern; names we do not know are ignored (we never send them).
    /// A reply without any known token gives [`SupportedTokens::builtin`].
    pub fn parse(reply: &str) -> SupportedTokens {
        let mask = reply
            .split([',', '\n'])
            .map(|p| p.split('=').next().unwrap_or("").trim())
            .filter_map(token_bit)
            .fold(0, |m, b| m | b);
        if mask == 0 {
            return SupportedTokens::builtin();
        }
        SupportedTokens {
            mask,
            reported: true,
        }
    }

    /// Does the kernel accept `token` (a bare name, `host_iface`, not `host_iface=%s`)?
    pub fn supports(&self, token: &str) -> bool {
        token_bit(token).is_some_and(|b| self.mask & b != 0)
    }

    /// Did the kernel give the list, or is it the built-in guess?
    pub fn is_reported(&self) -> bool {
        self.reported
    }
}

/// Tokens every transport takes (`NVMF_ALLOWED_OPTS` | `NVMF_REQUIRED_OPTS`, kernel 6.12).
const GENERIC_TOKENS: &str = "nqn transport queue_size nr_io_queues keep_alive_tmo hostnqn \
    hostid duplicate_connect disable_sqflow discovery fast_io_fail_tmo dhchap_secret \
    dhchap_ctrl_secret";

/// Per-transport `required_opts | allowed_opts` (kernel 6.12, tcp with 6.15's `concat`).
fn transport_tokens(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => {
            "traddr trsvcid reconnect_delay host_traddr ctrl_loss_tmo hdr_digest data_digest \
             nr_write_queues nr_poll_queues tos host_iface tls keyring tls_key concat"
        }
        Transport::Rdma => {
            "traddr trsvcid reconnect_delay host_traddr ctrl_loss_tmo nr_write_queues \
             nr_poll_queues tos"
        }
        Transport::Fc => "traddr host_traddr reconnect_delay ctrl_loss_tmo",
        Transport::Loop => "traddr",
    }
}

/// Does the kernel's `transport` driver take `token` at all?
pub fn transport_takes(t: Transport, token: &str) -> bool {
    listed(GENERIC_TOKENS, token) || listed(transport_tokens(t), token)
}

/// What kind of controller to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlKind {
    Io,
    Discovery { persistent: bool },
}

/// Everything that goes into one connect string.
#[derive(Debug, Clone, Copy)]
pub struct ConnectParams<'a> {
    pub subsysnqn: &'a str,
    pub addr: &'a TransportAddr,
    pub opts: &'a ConnectOpts,
    pub kind: CtrlKind,
}

/// Appends `,token=value` pieces after checking them against the token policy (module docs).
struct OptionString<'a> {
    out: String,
    transport: Transport,
    supported: &'a SupportedTokens,
}

/// An error part way leaves keys in the string: wiped whatever way it is dropped.
impl Drop for OptionString<'_> {
    fn drop(&mut self) {
        crate::secret::wipe(&mut self.out);
    }
}

impl OptionString<'_> {
    fn admit(&self, token: &'static str) -> Result<bool> {
        if !transport_takes(self.transport, token) {
            debug!("{token} does not apply to {}: left out", self.transport);
            return Ok(false);
        }
        if self.supported.supports(token) {
            return Ok(true);
        }
        let missing = if token.starts_with("dhchap") {
            Some(
                "this kernel has no DH-HMAC-CHAP support (CONFIG_NVME_HOST_AUTH), and connecting without the authentication configured is not what was asked",
            )
        } else if listed(TLS_TOKENS, token) {
            Some(
                "this kernel has no TLS support for NVMe/TCP (CONFIG_NVME_TCP_TLS), and connecting in the clear is not what was asked",
            )
        } else {
            None
        };
        if let Some(why) = missing {
            if self.supported.is_reported() {
                return Err(Error::invalid(format!("connect with {token}"), why));
            }
            return Ok(true);
        }
        if listed(ESSENTIAL, token) {
            if self.supported.is_reported() {
                return Err(Error::invalid(
                    format!("connect with {token}"),
                    "this kernel does not support it, and connecting without it would be a different connection",
                ));
            }
            return Ok(true);
        }
        warn!("this kernel does not support {token}: connecting without it");
        Ok(false)
    }

    fn push(&mut self, token: &str, value: fmt::Arguments) {
        use std::fmt::Write as _;
        if !self.out.is_empty() {
            self.out.push(',');
        }
        let _ = write!(self.out, "{token}={value}");
    }

    /// A string value; empty means unset and is left out.
    fn text(&mut self, token: &'static str, value: &str) -> Result<()> {
        if value.is_empty() {
            return Ok(());
        }
        check_value(token, value)?;
        if self.admit(token)? {
            self.push(token, format_args!("{value}"));
        }
        Ok(())
    }

    /// A key, checked when it was loaded ([`crate::secret::check_key`]: base64 may hold `=`,
    /// which the kernel's `%s` takes). Never part of an error message.
    fn secret(&mut self, token: &'static str, value: Option<&Secret>) -> Result<()> {
        let Some(key) = value else { return Ok(()) };
        if self.admit(token)? {
            self.push(token, format_args!("{}", key.expose()));
        }
        Ok(())
    }

    fn number(&mut self, token: &'static str, value: Option<i64>) -> Result<()> {
        let Some(v) = value else { return Ok(()) };
        if !(i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
            return Err(Error::invalid(
                format!("pass {token}={v} to the kernel"),
                "out of range",
            ));
        }
        if self.admit(token)? {
            self.push(token, format_args!("{v}"));
        }
        Ok(())
    }

    fn flag(&mut self, token: &'static str, on: bool) -> Result<()> {
        if on && self.admit(token)? {
            if !self.out.is_empty() {
                self.out.push(',');
            }
            self.out.push_str(token);
        }
        Ok(())
    }
}

/// The hostid that belongs to a `nqn.2014-08.org.nvmexpress:uuid:<uuid>` host NQN, as nvme-cli derives it.
fn hostid_from_hostnqn(hostnqn: &str) -> Option<&str> {
    let (_, uuid) = hostnqn.rsplit_once(":uuid:")?;
    (uuid.len() == 36).then_some(uuid)
}

/// Host NQN and host ID for one connection.
///
/// The kernel (>= 6.1, `nvmf_host_add`) refuses a host NQN paired with a host ID that another NQN
/// already uses, so an ID is only taken with the NQN it came with; otherwise it is derived from a
/// uuid-style NQN, or left to the kernel.
fn host_identity<'a>(
    p: &ConnectParams<'a>,
    default_hostnqn: &'a str,
    default_hostid: Option<&'a str>,
) -> (&'a str, Option<&'a str>) {
    let configured = p.opts.hostnqn.as_deref().unwrap_or(default_hostnqn);
    let hostnqn = match p.addr.hostnqn.as_str() {
        "" => configured,
        own => own,
    };
    let hostid = if hostnqn == configured {
        p.opts
            .hostid
            .as_deref()
            .or(default_hostid.filter(|_| hostnqn == default_hostnqn))
    } else {
        None
    };
    (hostnqn, hostid.or_else(|| hostid_from_hostnqn(hostnqn)))
}

/// The connect string for one controller.
///
/// Order: `nqn=` first (the kernel wants it before anything that depends on the NQN), then the
/// address, host identity and connection options. Follows libnvme `build_options`: discovery
/// controllers take no I/O queue options; `discovery` is sent for a discovery controller whose NQN
/// is not the well-known one (the kernel recognises that one itself); a persistent discovery
/// controller gets keep_alive_tmo (30 s unless given), a one-shot one none at all (it lives for one
/// log page read; the kernel's discovery default is no keep-alive). Zero counts and timeouts mean
/// "kernel default" and are left out, as in libnvme.
pub fn build_options(
    p: &ConnectParams,
    supported: &SupportedTokens,
    default_hostnqn: &str,
    default_hostid: Option<&str>,
) -> Result<String> {
    let t = p.addr.transport;
    let mut s = OptionString {
        // A page up front: a String that grows leaves the key in the buffer it gives up, which
        // wipe() never sees.
        out: String::with_capacity(OPTIONS_MAX),
        transport: t,
        supported,
    };
    // text() leaves empty values out; an empty NQN is an error instead.
    check_value("nqn", p.subsysnqn)?;
    s.text("nqn", p.subsysnqn)?;
    s.text("transport", t.name())?;
    if t != Transport::Loop && p.addr.traddr.is_empty() {
        return Err(Error::invalid(
            format!("connect over {t}"),
            "no traddr given",
        ));
    }
    if t == Transport::Fc && p.addr.host_traddr.is_empty() {
        return Err(Error::invalid("connect over fc", "no host_traddr given"));
    }
    s.text("traddr", p.addr.traddr.as_str())?;
    s.text("trsvcid", p.addr.trsvcid.as_str())?;
    s.text("host_traddr", p.addr.host_traddr.as_str())?;
    s.text("host_iface", p.addr.host_iface.as_str())?;
    let (hostnqn, hostid) = host_identity(p, default_hostnqn, default_hostid);
    s.text("hostnqn", hostnqn)?;
    s.text("hostid", hostid.unwrap_or(""))?;
    connection_options(&mut s, p)?;
    if s.out.len() > OPTIONS_MAX {
        return Err(Error::invalid(
            "build the connect string",
            format!("{} bytes, more than a page", s.out.len()),
        ));
    }
    Ok(std::mem::take(&mut s.out))
}

fn connection_options(s: &mut OptionString, p: &ConnectParams) -> Result<()> {
    let o = p.opts;
    let nonzero = |v: Option<u32>| v.filter(|&n| n > 0).map(i64::from);
    let kato = match p.kind {
        CtrlKind::Io => {
            s.number("nr_io_queues", nonzero(o.nr_io_queues))?;
            s.number("nr_write_queues", nonzero(o.nr_write_queues))?;
            s.number("nr_poll_queues", nonzero(o.nr_poll_queues))?;
            if let Some(q) = nonzero(o.queue_size) {
                // NVMF_MIN_QUEUE_SIZE / NVMF_MAX_QUEUE_SIZE; say so here rather than a bare EINVAL.
                if !(16..=1024).contains(&q) {
                    return Err(Error::invalid(
                        format!("pass queue_size={q} to the kernel"),
                        "must be between 16 and 1024",
                    ));
                }
                s.number("queue_size", Some(q))?;
            }
            nonzero(o.keep_alive_tmo)
        }
        CtrlKind::Discovery { persistent } => {
            s.flag("discovery", p.subsysnqn != DISCOVERY_NQN)?;
            persistent.then(|| {
                i64::from(
                    o.keep_alive_tmo
                        .filter(|&k| k > 0)
                        .unwrap_or(PERSISTENT_DISCOVERY_KATO),
                )
            })
        }
    };
    s.number("keep_alive_tmo", kato)?;
    s.number("reconnect_delay", nonzero(o.reconnect_delay))?;
    // Any negative ctrl_loss_tmo means "reconnect forever" to the kernel; -1 reads best in dmesg.
    s.number(
        "ctrl_loss_tmo",
        o.ctrl_loss_tmo.map(|v| i64::from(v.max(-1))),
    )?;
    // Negative is the kernel default (off) for both.
    s.number(
        "fast_io_fail_tmo",
        o.fast_io_fail_tmo.filter(|&v| v >= 0).map(i64::from),
    )?;
    s.number("tos", o.tos.filter(|&v| v >= 0).map(i64::from))?;
    // The kernel forces duplicate_connect on for discovery controllers.
    s.flag(
        "duplicate_connect",
        o.duplicate_connect && p.kind == CtrlKind::Io,
    )?;
    s.flag("disable_sqflow", o.disable_sqflow)?;
    s.flag("hdr_digest", o.hdr_digest)?;
    s.flag("data_digest", o.data_digest)?;
    // A discovery controller gets keys only when they were given for it (see ConnectOpts).
    if p.kind == CtrlKind::Io || o.dhchap_for_discovery {
        s.secret("dhchap_secret", o.dhchap_secret.as_ref())?;
        s.secret("dhchap_ctrl_secret", o.dhchap_ctrl_secret.as_ref())?;
    }
    // Whether an I/O controller uses TLS was decided by crate::tls::choose, which sets `tls`; the
    // serials only mean something with it.
    if o.tls_always() {
        s.flag("tls", true)?;
        s.number("keyring", o.keyring.filter(|&k| k > 0).map(i64::from))?;
        s.number("tls_key", o.tls_key.map(i64::from))?;
    }
    Ok(())
}

/// `instance=N,cntlid=M` as read back after a successful write.
pub fn parse_connect_reply(s: &str) -> Result<(u32, u16)> {
    let mut instance = None;
    let mut cntlid = None;
    for part in s.split([',', '\n']) {
        if let Some(v) = part.strip_prefix("instance=") {
            instance = v.trim().parse::<u32>().ok();
        } else if let Some(v) = part.strip_prefix("cntlid=") {
            cntlid = v.trim().parse::<u16>().ok();
        }
    }
    match (instance, cntlid) {
        (Some(i), Some(c)) => Ok((i, c)),
        _ => Err(Error::invalid(
            "parse the /dev/nvme-fabrics reply",
            format!(
                "expected instance=N,cntlid=M, got \"{}\"",
                escape_preview(s.as_bytes())
            ),
        )),
    }
}

/// Short text for what a connect errno means, for the error message.
pub fn describe_errno(e: Errno) -> &'static str {
    match e {
        Errno::ALREADY => "an identical controller already exists",
        Errno::INVAL => "invalid or unsupported option, see the kernel log",
        Errno::NODEV => "no such host interface",
        Errno::CONNREFUSED => "the target refused the connection",
        Errno::ADDRNOTAVAIL => "address not available on the host or the target",
        Errno::NOENT => "unknown port pair or target (FC)",
        Errno::TIMEDOUT => "timed out",
        Errno::HOSTUNREACH => "target unreachable",
        Errno::NETUNREACH => "network unreachable",
        Errno::CONNRESET => {
            "connection reset by the target (a port that requires TLS resets one in the clear)"
        }
        Errno::IO => "the target rejected the Connect command, see the kernel log",
        Errno::NOMEM => "out of memory, or the option string is longer than a page",
        Errno::ADDRINUSE => "host NQN or host ID already used with another identity",
        Errno::NOKEY => "no TLS or authentication key",
        Errno::KEYREJECTED => "authentication failed",
        Errno::OPNOTSUPP => "not supported by the transport",
        // nvme_tcp_start_tls: the handshake upcall found nobody listening.
        Errno::SRCH => "no TLS handshake agent (tlshd) is running",
        _ => "connect failed",
    }
}

/// What a connect write achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectOutcome {
    Connected {
        instance: u32,
        cntlid: u16,
    },
    /// EALREADY: the kernel already has this controller; not a failure for autoconnect.
    AlreadyConnected,
}

/// The /dev/nvme-fabrics misc device.
#[derive(Debug, Clone)]
pub struct Fabrics {
    path: PathBuf,
}

impl Fabrics {
    pub fn new(dev_root: &Path) -> Fabrics {
        Fabrics {
            path: dev_root.join("nvme-fabrics"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Is nvme-fabrics loaded (the device node is there)?
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    fn open(&self, flags: OFlags) -> Result<std::os::fd::OwnedFd> {
        rustix::fs::open(&self.path, flags | OFlags::CLOEXEC, Mode::empty())
            .context(|| format!("open {}", self.path.display()))
    }

    /// Read everything the device gives on `fd` (a seq_file: one record, then end of file).
    fn read_reply(&self, fd: &std::os::fd::OwnedFd, buf: &mut [u8]) -> Result<usize> {
        let mut len = 0;
        while len < buf.len() {
            match rustix::io::read(fd, &mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::os(format!("read {}", self.path.display()), e)),
            }
        }
        Ok(len)
    }

    /// Ask the kernel which tokens it accepts; kernels before 5.17 answer EINVAL and get the built-in set.
    pub fn supported_tokens(&self) -> Result<SupportedTokens> {
        let fd = self.open(OFlags::RDONLY)?;
        let mut buf = [0u8; OPTIONS_MAX];
        match self.read_reply(&fd, &mut buf) {
            Ok(n) => Ok(SupportedTokens::parse(&String::from_utf8_lossy(
                buf.get(..n).unwrap_or(&[]),
            ))),
            Err(e) if e.errno() == Some(Errno::INVAL) => {
                debug!(
                    "{} gives no token list: assuming the built-in set",
                    self.path.display()
                );
                Ok(SupportedTokens::builtin())
            }
            Err(e) => Err(e),
        }
    }

    /// Create a controller from an option string made by [`build_options`].
    ///
    /// The write blocks until the kernel has set the controller up or given up: seconds for an
    /// unreachable TCP address, up to the admin timeout for a Connect command nobody answers (see
    /// doc/nvme-monitor.8, "Stopping during a connect"). It runs with SIGTERM and SIGINT
    /// deliverable, so the interruptible part of that wait (the socket connect, the ICReq exchange)
    /// ends with EINTR when one arrives; the signal stays pending for the caller's stop check and
    /// the connect is not retried here. A failed write creates nothing: the kernel tears down what
    /// it had begun before returning (`nvmf_create_ctrl`).
    pub fn connect(&self, options: &str) -> Result<ConnectOutcome> {
        let fd = self.open(OFlags::RDWR)?;
        // Messages carry the string without its keys.
        let shown = crate::secret::scrub(options);
        let (written, signal) = crate::sys::with_stop_signals_deliverable(|| {
            rustix::io::write(&fd, options.as_bytes())
        });
        match written {
            Ok(n) if n == options.len() => {}
            Err(Errno::INTR) => {
                let by = signal.map_or("a signal", crate::sys::signal_name);
                return Err(Error::os(
                    format!("connect {shown} (interrupted by {by}, nothing created)"),
                    Errno::INTR,
                ));
            }
            Ok(n) => {
                return Err(Error::invalid(
                    format!("connect {shown}"),
                    format!("short write of {n} bytes"),
                ));
            }
            Err(Errno::ALREADY) => return Ok(ConnectOutcome::AlreadyConnected),
            Err(e) => {
                return Err(Error::os(
                    format!("connect {shown} ({})", describe_errno(e)),
                    e,
                ));
            }
        }
        let mut buf = [0u8; 256];
        let n = self.read_reply(&fd, &mut buf).map_err(|e| {
            Error::invalid(
                format!("connect {shown}"),
                format!("controller created, but {e}"),
            )
        })?;
        let reply = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[]));
        let (instance, cntlid) = parse_connect_reply(&reply)?;
        Ok(ConnectOutcome::Connected { instance, cntlid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kernel 6.12 prints on a read before any write, with CONFIG_NVME_TCP_TLS and
    /// CONFIG_NVME_HOST_AUTH set (as distribution kernels do): `nvmf_dev_show` walks `opt_tokens`.
    const READ_6_12: &str = "instance=-1,cntlid=-1,transport=%s,traddr=%s,trsvcid=%s,nqn=%s,\
queue_size=%d,nr_io_queues=%d,reconnect_delay=%d,ctrl_loss_tmo=%d,keep_alive_tmo=%d,hostnqn=%s,\
host_traddr=%s,host_iface=%s,hostid=%s,duplicate_connect,disable_sqflow,hdr_digest,data_digest,\
nr_write_queues=%d,nr_poll_queues=%d,tos=%d,keyring=%d,tls_key=%d,fast_io_fail_tmo=%d,discovery,\
dhchap_secret=%s,dhchap_ctrl_secret=%s,tls\n";

    const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:3f1e2d4c-5b6a-4789-8abc-def012345678";
    const HOSTID: &str = "3f1e2d4c-5b6a-4789-8abc-def012345678";
    const SUBNQN: &str = "nqn.2024-01.io.example:disk1";

    fn addr(
        t: Transport,
        traddr: &str,
        trsvcid: &str,
        host_traddr: &str,
        iface: &str,
    ) -> TransportAddr {
        TransportAddr::new(t, traddr, trsvcid, host_traddr, iface).unwrap()
    }

    fn build(nqn: &str, a: &TransportAddr, o: &ConnectOpts, kind: CtrlKind) -> Result<String> {
        let p = ConnectParams {
            subsysnqn: nqn,
            addr: a,
            opts: o,
            kind,
        };
        build_options(
            &p,
            &SupportedTokens::parse(READ_6_12),
            HOSTNQN,
            Some(HOSTID),
        )
    }

    fn all_opts() -> ConnectOpts {
        ConnectOpts {
            hostnqn: None,
            hostid: None,
            nr_io_queues: Some(4),
            nr_write_queues: Some(2),
            nr_poll_queues: Some(1),
            queue_size: Some(64),
            keep_alive_tmo: Some(15),
            reconnect_delay: Some(5),
            ctrl_loss_tmo: Some(-1),
            fast_io_fail_tmo: Some(20),
            tos: Some(0),
            duplicate_connect: true,
            disable_sqflow: true,
            hdr_digest: true,
            data_digest: true,
            dhchap_secret: None,
            dhchap_ctrl_secret: None,
            dhchap_for_discovery: false,
            tls: false,
            keyring: None,
            tls_key: None,
        }
    }

    const HOST_KEY: &str = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
    const CTRL_KEY: &str =
        "DHHC-1:02:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wyg3Bcw==:";

    fn keyed(for_discovery: bool) -> ConnectOpts {
        ConnectOpts {
            dhchap_secret: Some(Secret::load(HOST_KEY, "test").unwrap()),
            dhchap_ctrl_secret: Some(Secret::load(CTRL_KEY, "test").unwrap()),
            dhchap_for_discovery: for_discovery,
            ..Default::default()
        }
    }

    #[test]
    fn dhchap_keys_reach_io_controllers_and_discovery_ones_only_when_meant_for_them() {
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let tokens = SupportedTokens::parse(READ_6_12);
        let build = |kind, opts: &ConnectOpts, nqn| {
            let p = ConnectParams {
                subsysnqn: nqn,
                addr: &a,
                opts,
                kind,
            };
            build_options(&p, &tokens, HOSTNQN, Some(HOSTID)).unwrap()
        };
        let both = format!("dhchap_secret={HOST_KEY},dhchap_ctrl_secret={CTRL_KEY}");
        let io = build(CtrlKind::Io, &keyed(false), SUBNQN);
        assert!(io.ends_with(&both), "{io}");
        let dc = CtrlKind::Discovery { persistent: true };
        let plain = build(dc, &keyed(false), DISCOVERY_NQN);
        assert!(
            !plain.contains("dhchap"),
            "a key for every connection: {plain}"
        );
        let meant = build(dc, &keyed(true), DISCOVERY_NQN);
        assert!(meant.ends_with(&both), "{meant}");
        // '=' of the base64 padding is passed as is: the kernel's %s takes the rest of the piece.
        assert!(io.contains("Bcw==:"), "{io}");
    }

    #[test]
    fn a_kernel_without_dhchap_refuses_the_connect_in_words() {
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let no_auth = READ_6_12.replace("dhchap_secret=%s,dhchap_ctrl_secret=%s,", "");
        let tokens = SupportedTokens::parse(&no_auth);
        let opts = keyed(false);
        let p = ConnectParams {
            subsysnqn: SUBNQN,
            addr: &a,
            opts: &opts,
            kind: CtrlKind::Io,
        };
        let e = build_options(&p, &tokens, HOSTNQN, Some(HOSTID))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no DH-HMAC-CHAP support"), "{e}");
        assert!(!e.contains("AAECAw"), "{e}");
    }

    #[test]
    fn tls_tokens_go_with_tls_and_tcp_only_and_a_kernel_without_them_is_said() {
        let tcp = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let rdma = addr(Transport::Rdma, "10.0.0.1", "4420", "", "");
        let tokens = SupportedTokens::parse(READ_6_12);
        let build = |a: &TransportAddr, opts: &ConnectOpts, tokens: &SupportedTokens| {
            let p = ConnectParams {
                subsysnqn: SUBNQN,
                addr: a,
                opts,
                kind: CtrlKind::Io,
            };
            build_options(&p, tokens, HOSTNQN, Some(HOSTID))
        };
        let with = |tls, keyring, tls_key| ConnectOpts {
            tls,
            keyring,
            tls_key,
            ..Default::default()
        };
        let s = build(&tcp, &with(true, Some(0x1234), None), &tokens).unwrap();
        assert!(s.ends_with(",tls,keyring=4660"), "{s}");
        // A PSK serial means TLS with that key.
        let s = build(&tcp, &with(false, None, Some(77)), &tokens).unwrap();
        assert!(s.ends_with(",tls,tls_key=77"), "{s}");
        // A keyring alone is where an entry that asks for TLS finds its key: no TLS by itself.
        let s = build(&tcp, &with(false, Some(5), None), &tokens).unwrap();
        assert!(!s.contains("tls") && !s.contains("keyring"), "{s}");
        // .nvme (0), the kernel's default, is not passed.
        let s = build(&tcp, &with(true, Some(0), None), &tokens).unwrap();
        assert!(s.ends_with(",tls"), "{s}");
        // RDMA has no TLS: left out (a global --tls covers every transport).
        let s = build(&rdma, &with(true, Some(5), Some(6)), &tokens).unwrap();
        assert!(!s.contains("tls") && !s.contains("keyring"), "{s}");
        let no_tls = SupportedTokens::parse(&READ_6_12.replace(",tls\n", "\n"));
        assert!(!no_tls.supports("tls") && no_tls.supports("keyring"));
        let e = build(&tcp, &with(true, None, None), &no_tls)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no TLS support for NVMe/TCP"), "{e}");
    }

    #[test]
    fn tokens_from_a_6_12_read() {
        let t = SupportedTokens::parse(READ_6_12);
        assert!(t.is_reported());
        for tok in [
            "nqn",
            "transport",
            "host_iface",
            "discovery",
            "fast_io_fail_tmo",
            "tls",
            "hdr_digest",
        ] {
            assert!(t.supports(tok), "{tok}");
        }
        // `instance`/`cntlid` are not tokens; `concat` came after 6.12; patterns are not names.
        for tok in ["instance", "cntlid", "concat", "host_iface=%s", "bogus", ""] {
            assert!(!t.supports(tok), "{tok}");
        }
    }

    #[test]
    fn no_list_gives_the_builtin_set() {
        for reply in ["", "instance=-1,cntlid=-1\n", "garbage"] {
            let t = SupportedTokens::parse(reply);
            assert_eq!(t, SupportedTokens::builtin());
            assert!(!t.is_reported());
        }
        let b = SupportedTokens::builtin();
        assert!(b.supports("ctrl_loss_tmo") && b.supports("tos") && b.supports("hostid"));
        assert!(
            !b.supports("host_iface")
                && !b.supports("discovery")
                && !b.supports("fast_io_fail_tmo")
        );
    }

    #[test]
    fn tcp_io_controller_with_every_option() {
        let a = addr(
            Transport::Tcp,
            "192.168.1.3",
            "4420",
            "192.168.1.10",
            "eth0",
        );
        let s = build(SUBNQN, &a, &all_opts(), CtrlKind::Io).unwrap();
        assert_eq!(
            s,
            format!(
                "nqn={SUBNQN},transport=tcp,traddr=192.168.1.3,trsvcid=4420,host_traddr=192.168.1.10,\
host_iface=eth0,hostnqn={HOSTNQN},hostid={HOSTID},nr_io_queues=4,nr_write_queues=2,nr_poll_queues=1,\
queue_size=64,keep_alive_tmo=15,reconnect_delay=5,ctrl_loss_tmo=-1,fast_io_fail_tmo=20,tos=0,\
duplicate_connect,disable_sqflow,hdr_digest,data_digest"
            )
        );
    }

    #[test]
    fn tcp_persistent_discovery_controller() {
        let a = addr(Transport::Tcp, "10.0.0.1", "8009", "", "");
        let s = build(
            DISCOVERY_NQN,
            &a,
            &all_opts(),
            CtrlKind::Discovery { persistent: true },
        )
        .unwrap();
        // No I/O queue options, no duplicate_connect; the user's keep-alive wins over 30.
        assert_eq!(
            s,
            format!(
                "nqn={DISCOVERY_NQN},transport=tcp,traddr=10.0.0.1,trsvcid=8009,hostnqn={HOSTNQN},\
hostid={HOSTID},keep_alive_tmo=15,reconnect_delay=5,ctrl_loss_tmo=-1,fast_io_fail_tmo=20,tos=0,\
disable_sqflow,hdr_digest,data_digest"
            )
        );
        let s = build(
            DISCOVERY_NQN,
            &a,
            &ConnectOpts::default(),
            CtrlKind::Discovery { persistent: true },
        )
        .unwrap();
        assert!(
            s.ends_with(&format!("hostid={HOSTID},keep_alive_tmo=30")),
            "{s}"
        );
    }

    #[test]
    fn one_shot_discovery_has_no_keep_alive() {
        let a = addr(Transport::Tcp, "10.0.0.1", "8009", "", "");
        let s = build(
            DISCOVERY_NQN,
            &a,
            &all_opts(),
            CtrlKind::Discovery { persistent: false },
        )
        .unwrap();
        assert!(!s.contains("keep_alive_tmo") && !s.contains("queue"), "{s}");
    }

    #[test]
    fn unique_discovery_nqn_gets_the_discovery_token() {
        let a = addr(Transport::Tcp, "10.0.0.1", "8009", "", "");
        let cdc = "nqn.1988-11.com.dell:SFSS:1:20230101";
        let s = build(
            cdc,
            &a,
            &ConnectOpts::default(),
            CtrlKind::Discovery { persistent: true },
        )
        .unwrap();
        assert!(
            s.contains(&format!("hostid={HOSTID},discovery,keep_alive_tmo=30")),
            "{s}"
        );
        let s = build(
            DISCOVERY_NQN,
            &a,
            &ConnectOpts::default(),
            CtrlKind::Discovery { persistent: true },
        )
        .unwrap();
        assert!(!s.contains(",discovery"), "{s}");
    }

    #[test]
    fn loop_takes_only_generic_options() {
        let a = addr(Transport::Loop, "", "", "", "");
        let s = build(SUBNQN, &a, &all_opts(), CtrlKind::Io).unwrap();
        assert_eq!(
            s,
            format!(
                "nqn={SUBNQN},transport=loop,hostnqn={HOSTNQN},hostid={HOSTID},nr_io_queues=4,\
queue_size=64,keep_alive_tmo=15,fast_io_fail_tmo=20,duplicate_connect,disable_sqflow"
            )
        );
        let a = addr(Transport::Loop, "1", "", "", "");
        let s = build(
            DISCOVERY_NQN,
            &a,
            &ConnectOpts::default(),
            CtrlKind::Discovery { persistent: false },
        )
        .unwrap();
        assert_eq!(
            s,
            format!(
                "nqn={DISCOVERY_NQN},transport=loop,traddr=1,hostnqn={HOSTNQN},hostid={HOSTID}"
            )
        );
    }

    #[test]
    fn fc_io_and_discovery_controllers() {
        let (ta, ha) = (
            "nn-0x20000090fa942779:pn-0x10000090fa942779",
            "nn-0x20000090fae0b5f5:pn-0x10000090fae0b5f5",
        );
        let a = addr(Transport::Fc, ta, "none", ha, "");
        let s = build(SUBNQN, &a, &all_opts(), CtrlKind::Io).unwrap();
        assert_eq!(
            s,
            format!(
                "nqn={SUBNQN},transport=fc,traddr={ta},host_traddr={ha},hostnqn={HOSTNQN},hostid={HOSTID},\
nr_io_queues=4,queue_size=64,keep_alive_tmo=15,reconnect_delay=5,ctrl_loss_tmo=-1,fast_io_fail_tmo=20,\
duplicate_connect,disable_sqflow"
            )
        );
        let s = build(
            DISCOVERY_NQN,
            &a,
            &ConnectOpts::default(),
            CtrlKind::Discovery { persistent: true },
        )
        .unwrap();
        assert!(s.ends_with(&format!(
            "host_traddr={ha},hostnqn={HOSTNQN},hostid={HOSTID},keep_alive_tmo=30"
        )));
        let no_host = addr(Transport::Fc, ta, "", "", "");
        assert!(build(SUBNQN, &no_host, &ConnectOpts::default(), CtrlKind::Io).is_err());
    }

    #[test]
    fn rdma_has_no_digests_or_iface() {
        let a = addr(Transport::Rdma, "192.168.2.2", "4420", "", "ib0");
        let s = build(SUBNQN, &a, &all_opts(), CtrlKind::Io).unwrap();
        assert!(
            s.contains("nr_write_queues=2") && s.contains("tos=0"),
            "{s}"
        );
        assert!(!s.contains("digest") && !s.contains("host_iface"), "{s}");
    }

    #[test]
    fn zero_and_negative_mean_kernel_default() {
        let o = ConnectOpts {
            nr_io_queues: Some(0),
            keep_alive_tmo: Some(0),
            fast_io_fail_tmo: Some(-1),
            tos: Some(-1),
            ctrl_loss_tmo: Some(-5),
            ..Default::default()
        };
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let s = build(SUBNQN, &a, &o, CtrlKind::Io).unwrap();
        assert!(
            s.ends_with(&format!("hostid={HOSTID},ctrl_loss_tmo=-1")),
            "{s}"
        );
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let big = ConnectOpts {
            keep_alive_tmo: Some(u32::MAX),
            ..Default::default()
        };
        assert!(
            build(SUBNQN, &a, &big, CtrlKind::Io)
                .unwrap_err()
                .to_string()
                .contains("keep_alive_tmo")
        );
        let q = ConnectOpts {
            queue_size: Some(8),
            ..Default::default()
        };
        assert!(
            build(SUBNQN, &a, &q, CtrlKind::Io)
                .unwrap_err()
                .to_string()
                .contains("queue_size")
        );
    }

    #[test]
    fn host_identity_pairs_nqn_and_id() {
        let mut a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        // Per-address host NQN: the default host ID does not belong to it; a uuid NQN gives its own.
        a.hostnqn = crate::addr::Nqn::new(
            "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001",
        )
        .unwrap();
        let s = build(SUBNQN, &a, &ConnectOpts::default(), CtrlKind::Io).unwrap();
        assert!(
            s.ends_with("hostid=00000000-0000-0000-0000-000000000001"),
            "{s}"
        );
        a.hostnqn = crate::addr::Nqn::new("nqn.2024-01.io.example:host2").unwrap();
        let s = build(SUBNQN, &a, &ConnectOpts::default(), CtrlKind::Io).unwrap();
        assert!(s.ends_with("hostnqn=nqn.2024-01.io.example:host2"), "{s}");
        // Configured pair.
        let o = ConnectOpts {
            hostnqn: Some("nqn.2024-01.io.example:host3".into()),
            hostid: Some("11111111-2222-3333-4444-555555555555".into()),
            ..Default::default()
        };
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let s = build(SUBNQN, &a, &o, CtrlKind::Io).unwrap();
        assert!(
            s.ends_with(
                "hostnqn=nqn.2024-01.io.example:host3,hostid=11111111-2222-3333-4444-555555555555"
            ),
            "{s}"
        );
    }

    #[test]
    fn hostile_values_are_refused_naming_the_field() {
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let e = build(
            "nqn.x,hostnqn=evil",
            &a,
            &ConnectOpts::default(),
            CtrlKind::Io,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nqn \"nqn.x,hostnqn=evil\""), "{e}");
        assert!(e.to_string().ends_with("contains ','"), "{e}");

        let nl = addr(Transport::Tcp, "10.0.0.1\nhostnqn=evil", "4420", "", "");
        let e = build(SUBNQN, &nl, &ConnectOpts::default(), CtrlKind::Io).unwrap_err();
        assert!(e.to_string().contains("traddr \"10.0.0.1\\nhostnqn"), "{e}");

        let nul = addr(Transport::Tcp, "10.0.0.1", "44\x0020", "", "");
        let e = build(SUBNQN, &nul, &ConnectOpts::default(), CtrlKind::Io).unwrap_err();
        assert!(e.to_string().contains("trsvcid"), "{e}");

        let long = addr(Transport::Tcp, &"1".repeat(256), "4420", "", "");
        let e = build(SUBNQN, &long, &ConnectOpts::default(), CtrlKind::Io).unwrap_err();
        assert!(
            e.to_string().contains("traddr") && e.to_string().contains("256 bytes"),
            "{e}"
        );
        assert!(check_value("traddr", &"1".repeat(300)).is_err());

        let o = ConnectOpts {
            hostnqn: Some("nqn.h=1".into()),
            ..Default::default()
        };
        let e = build(SUBNQN, &a, &o, CtrlKind::Io).unwrap_err();
        assert!(e.to_string().contains("hostnqn"), "{e}");
        assert!(build("", &a, &ConnectOpts::default(), CtrlKind::Io).is_err());
    }

    #[test]
    fn check_value_bytes() {
        assert!(check_value("traddr", "fe80::1%eth0").is_ok());
        assert!(check_value("nqn", &"n".repeat(NQN_MAX)).is_ok());
        assert!(check_value("nqn", &"n".repeat(NQN_MAX + 1)).is_err());
        assert_eq!(
            value_problem("traddr", b"a\x7fb"),
            Some(ValueProblem::NotPrintable(0x7f))
        );
        assert_eq!(
            value_problem("traddr", "é".as_bytes()),
            Some(ValueProblem::NotPrintable(0xc3))
        );
        assert_eq!(
            value_problem("traddr", b"a\tb"),
            Some(ValueProblem::NotPrintable(b'\t'))
        );
        assert_eq!(
            value_problem("host_iface", b"0123456789abcdef"),
            Some(ValueProblem::TooLong { len: 16, max: 15 })
        );
        let e = check_value("traddr", "\u{0}x").unwrap_err().to_string();
        assert!(e.contains("\\x00x"), "{e}");
    }

    #[test]
    fn essential_token_missing_from_the_kernel_list_refuses() {
        let old = SupportedTokens::parse(
            "instance=-1,cntlid=-1,transport=%s,traddr=%s,trsvcid=%s,nqn=%s,hostnqn=%s,hostid=%s,keep_alive_tmo=%d\n",
        );
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "eth0");
        let p = ConnectParams {
            subsysnqn: SUBNQN,
            addr: &a,
            opts: &all_opts(),
            kind: CtrlKind::Io,
        };
        let e = build_options(&p, &old, HOSTNQN, None).unwrap_err();
        assert!(e.to_string().contains("host_iface"), "{e}");
        // Tuning options the kernel lacks are dropped; digests are essential.
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        let o = ConnectOpts {
            nr_io_queues: Some(4),
            tos: Some(3),
            ..Default::default()
        };
        let p = ConnectParams {
            subsysnqn: SUBNQN,
            addr: &a,
            opts: &o,
            kind: CtrlKind::Io,
        };
        let s = build_options(&p, &old, HOSTNQN, None).unwrap();
        assert_eq!(
            s,
            format!(
                "nqn={SUBNQN},transport=tcp,traddr=10.0.0.1,trsvcid=4420,hostnqn={HOSTNQN},hostid={HOSTID}"
            )
        );
        let o = ConnectOpts {
            hdr_digest: true,
            ..Default::default()
        };
        let p = ConnectParams {
            subsysnqn: SUBNQN,
            addr: &a,
            opts: &o,
            kind: CtrlKind::Io,
        };
        assert!(build_options(&p, &old, HOSTNQN, None).is_err());
        // Without a kernel list an essential token is sent and the kernel decides.
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "eth0");
        let p = ConnectParams {
            subsysnqn: SUBNQN,
            addr: &a,
            opts: &o,
            kind: CtrlKind::Io,
        };
        let s = build_options(&p, &SupportedTokens::builtin(), HOSTNQN, None).unwrap();
        assert!(
            s.contains("host_iface=eth0") && s.ends_with("hdr_digest"),
            "{s}"
        );
    }

    #[test]
    fn connect_reply() {
        assert_eq!(
            parse_connect_reply("instance=3,cntlid=1\n").unwrap(),
            (3, 1)
        );
        assert_eq!(
            parse_connect_reply("instance=12,cntlid=65535").unwrap(),
            (12, 65535)
        );
        for bad in [
            "",
            "\n",
            "instance=-1,cntlid=-1,transport=%s\n",
            "instance=3\n",
            "cntlid=1",
            "instance=x,cntlid=1",
            "instance=1,cntlid=65536",
            "garbage\u{0}\u{1}",
        ] {
            assert!(parse_connect_reply(bad).is_err(), "{bad:?}");
        }
        assert!(READ_6_12.starts_with("instance=-1") && parse_connect_reply(READ_6_12).is_err());
    }

    #[test]
    fn errno_text() {
        assert_eq!(describe_errno(Errno::NODEV), "no such host interface");
        assert!(describe_errno(Errno::NOENT).contains("FC"));
        assert_eq!(describe_errno(Errno::PERM), "connect failed");
    }

    fn temp_dev(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "nvme-monitor-fabrics-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn device_on_a_temporary_tree() {
        let dev = temp_dev("dev");
        let f = Fabrics::new(&dev);
        assert!(!f.exists());
        assert!(
            f.supported_tokens()
                .unwrap_err()
                .to_string()
                .contains("nvme-fabrics")
        );
        std::fs::write(f.path(), READ_6_12).unwrap();
        assert!(f.exists());
        assert_eq!(
            f.supported_tokens().unwrap(),
            SupportedTokens::parse(READ_6_12)
        );
        // A regular file stands in for the device: the write lands on the padding, the read gets the rest.
        let options = format!("nqn={SUBNQN},transport=loop");
        std::fs::write(
            f.path(),
            format!("{}instance=7,cntlid=2\n", "x".repeat(options.len())),
        )
        .unwrap();
        assert_eq!(
            f.connect(&options).unwrap(),
            ConnectOutcome::Connected {
                instance: 7,
                cntlid: 2
            }
        );
        std::fs::write(f.path(), "").unwrap();
        assert!(f.connect(&options).is_err());
        let _ = std::fs::remove_dir_all(&dev);
    }
}
