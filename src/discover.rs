//! One discovery run for one table slot: the I/O half of what the engine decides.
//!
//! Find or create the discovery controller (the choice is [`crate::ownership::choose_dc`]'s), read
//! its log consistently, connect every NVM subsystem that is not connected yet (with
//! `--autoconnect`), hand referrals back to the engine (they are visited from the main loop, never
//! by recursion), and delete a temporary discovery controller once it is proven to be the one we
//! made. Each hostile or failing entry is logged and skipped; the others still proceed. Everything
//! the run asks of the kernel goes through the [`Kernel`] seam.

use std::cell::RefCell;

use crate::addr::{Nqn, Transport, TransportAddr};
use crate::config::DiscoverySource;
use crate::discovery_log::{DiscoveryEntry, SubType};
use crate::engine::{EntryKey, Outcome, Referral, RetryResult};
use crate::error::{Error, Result};
use crate::exclusions::{Candidate, ExclusionList};
use crate::fabrics::{
    self, ConnectOutcome, ConnectParams, CtrlKind, DISCOVERY_NQN, SupportedTokens,
};
use crate::kernel::{Kernel, LogEntries};
use crate::opts::ConnectOpts;
use crate::ownership::{self, DcChoice};
use crate::sysfs::{self, Controller};
use crate::table::{DiscoveryCtrl, OptsRef, Owner, Slot};
use crate::tls::{self, ChannelAsk, TlsChoice};

/// Everything a discovery run needs that does not change between runs.
pub struct Context<'a> {
    pub kernel: &'a dyn Kernel,
    pub hostnqn: &'a str,
    pub hostid: Option<&'a str>,
    pub global_opts: &'a ConnectOpts,
    pub sources: &'a [DiscoverySource],
    /// nvme-fabrics.conf `[Subsystem]` DH-HMAC-CHAP keys: they win over the discovery
    /// controller's for a log entry naming that subsystem.
    pub subsystem_keys: &'a [crate::settings::SubsystemKeys],
    pub autoconnect: bool,
    /// Sources from this index on are the firmware's boot paths (NBFT): what their discovery
    /// logs name is connected with or without `--autoconnect`, as `connect-all --nbft` does.
    pub nbft_from: usize,
    pub persistent: bool,
    pub dry_run: bool,
    /// Entries of this slot's log whose own retry backoff still runs: not tried in this run.
    pub waiting_entries: &'a [EntryKey],
    /// Called as soon as we created a discovery controller (the state file must know it at once).
    pub on_created: &'a dyn Fn(&DiscoveryCtrl),
    /// Called just before the connect of a discovery controller at the address with the highest
    /// controller identity sysfs shows (`Some`), and after a connect that failed (`None`): the
    /// state file records the intent meanwhile, so a SIGKILL between the kernel making the
    /// controller and `on_created` leaks nothing.
    pub on_creating: &'a dyn Fn(&TransportAddr, Option<u64>),
    /// SIGTERM or SIGINT arrived: stop connecting (each connect may block for a kernel timeout).
    pub stop_requested: &'a dyn Fn() -> bool,
    /// nvme-cli 3's exclusion list, re-read by the shell before each run: what a log enumerates
    /// (subsystems, referrals) is checked against it before it is connected.
    pub exclusions: &'a ExclusionList,
    /// What the run saw, for `nvme-monitor status` (nothing is decided on it).
    pub report: &'a RefCell<Report>,
}

/// What one discovery run (or entry retry) saw, beyond its [`Outcome`]: the operator's view.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Why the run failed, as logged.
    pub error: Option<String>,
    /// The run got as far as reading the discovery log (a direct subsystem's: as trying its
    /// connect), so `connected` is the whole list.
    pub read_log: bool,
    /// Log entries whose connect failed, and the last such error.
    pub failed_entries: usize,
    pub entry_error: Option<String>,
    /// The I/O controllers the log's entries were connected as (now, or before this run).
    pub connected: Vec<crate::status::IoCtrl>,
}

impl Report {
    /// The status's words for the run: its error, else what failed inside it.
    pub fn error_text(&self) -> String {
        match (&self.error, &self.entry_error) {
            (Some(e), _) => e.clone(),
            (None, Some(e)) if self.failed_entries == 1 => {
                format!("1 subsystem not connected, retried on its own: {e}")
            }
            (None, Some(e)) => format!(
                "{} subsystems not connected, retried on their own; the last: {e}",
                self.failed_entries
            ),
            (None, None) => String::new(),
        }
    }

    fn saw(&mut self, c: &Controller) {
        if !self.connected.iter().any(|x| x.name == c.name) {
            self.connected.push(crate::status::IoCtrl {
                name: c.name.clone(),
                ino: c.ino,
                subsysnqn: c.subsysnqn.clone(),
            });
        }
    }
}

/// A refusal of ours before any write (a token this kernel lacks, a value it would refuse) for a
/// path whose last failure was one too (`Slot::refusing`): said once, when it started; the
/// retries (on the backoff, up to the cap) say it at debug level only, and the status shows it.
/// A path failing for another reason before (a target down, the module not loaded) says it.
fn refused_again(e: &crate::error::Error, slot: &Slot) -> bool {
    e.errno().is_none() && slot.refusing
}

fn failed(ctx: &Context, why: String) {
    error!("{why}");
    ctx.report.borrow_mut().error = Some(why);
}

impl Context<'_> {
    /// Connect what this slot's discovery log names: `--autoconnect`, or a discovery controller
    /// from the NBFT (or a referral it led to, which has its options).
    pub fn connects_entries(&self, slot: &Slot) -> bool {
        self.autoconnect
            || slot.origin == crate::table::Origin::Nbft
            || matches!(slot.opts, OptsRef::Source(i) if i as usize >= self.nbft_from)
    }

    /// The slot is an address our command line names (see [`DiscoverySource::explicit`]); a
    /// referral inherits its parent's options, never this.
    pub fn is_explicit(&self, slot: &Slot) -> bool {
        slot.origin == crate::table::Origin::Config
            && matches!(slot.opts, OptsRef::Source(i)
                if self.sources.get(i as usize).is_some_and(|s| s.explicit))
    }

    /// Connection options for a slot: its discovery.conf line over the command line's.
    pub fn opts_for(&self, r: OptsRef) -> ConnectOpts {
        match r {
            OptsRef::Source(i) => match self.sources.get(i as usize) {
                Some(src) => src.opts.or(self.global_opts),
                None => self.global_opts.clone(),
            },
            OptsRef::Global => self.global_opts.clone(),
        }
    }
}

/// Run discovery for `slot`; never fails as a whole: problems become `ok: false` and log lines.
pub fn run(ctx: &Context, slot: &Slot) -> Outcome {
    let mut outcome = Outcome {
        ok: true,
        dc: slot.dc,
        referrals: Vec::new(),
        failed_entries: Vec::new(),
        skipped_entries: Vec::new(),
        addr_gone: false,
        auth_failed_entries: Vec::new(),
        auth_failed: false,
        refused: false,
    };
    if !ctx.kernel.fabrics_present() {
        let why = "/dev/nvme-fabrics is absent (nvme-fabrics module not loaded)";
        warn!("cannot discover {}: {why}", slot.addr);
        ctx.report.borrow_mut().error = Some(why.into());
        outcome.ok = false;
        return outcome;
    }
    let tokens = match ctx.kernel.supported_tokens() {
        Ok(t) => t,
        Err(e) => {
            failed(ctx, e.to_string());
            outcome.ok = false;
            return outcome;
        }
    };
    let opts = ctx.opts_for(slot.opts);
    if slot.is_direct() {
        connect_direct(ctx, slot, &tokens, &opts, &mut outcome);
        return outcome;
    }
    let dc = match discovery_controller(ctx, slot, &tokens, &opts) {
        Ok(Some(dc)) => dc,
        Ok(None) => return outcome, // excluded, or a dry run without a controller to read
        Err(e) => {
            let how = AuthUse::of(&opts, slot.addr.transport, true, slot.tls);
            outcome.auth_failed = is_auth_failure(&e, how);
            outcome.refused = e.errno().is_none();
            let why = format!("discovery at {}: {e}", slot.addr);
            if refused_again(&e, slot) {
                debug!("{why}");
                ctx.report.borrow_mut().error = Some(why);
            } else {
                failed(ctx, why);
            }
            // The FC transport says ENOENT when it knows no such port pair: the remote port is
            // gone, which lets the engine release an address that only an FC event asked for.
            outcome.addr_gone =
                slot.addr.transport == Transport::Fc && e.errno() == Some(rustix::io::Errno::NOENT);
            // Keep the controller we had: one that is reconnecting is still ours (the state file
            // must keep it), and one that is gone is cleared by its remove event.
            outcome.ok = false;
            return outcome;
        }
    };
    outcome.dc = Some(dc);
    match ctx.kernel.read_log(dc.instance) {
        Ok(entries) => {
            ctx.report.borrow_mut().read_log = true;
            handle_entries(ctx, slot, &entries, &tokens, &opts, &mut outcome)
        }
        Err(e) => {
            failed(
                ctx,
                format!("discovery at {} (nvme{}): {e}", slot.addr, dc.instance),
            );
            outcome.ok = false;
        }
    }
    if !keeps_dc(ctx, slot) && dc.owner == Owner::Ours {
        // A temporary discovery controller: gone once its log is read, as `nvme connect-all`
        // does; but only once sysfs shows it is still the one we made.
        if delete_if_ours(ctx.kernel, &dc, &slot.addr) {
            outcome.dc = None;
        }
    }
    outcome
}

/// A subsystem the configuration names directly: connect it unless sysfs shows it connected.
/// No discovery controller is involved; a failure makes the run fail, so the engine retries it on
/// the slot's backoff (for ever, as configured addresses are).
fn connect_direct(
    ctx: &Context,
    slot: &Slot,
    tokens: &SupportedTokens,
    opts: &ConnectOpts,
    outcome: &mut Outcome,
) {
    outcome.dc = None;
    let key = EntryKey {
        addr: slot.addr,
        subnqn: slot.subsystem,
        // Configured, not discovered: its own options say whether it uses TLS.
        ask: ChannelAsk::None,
    };
    // Every controller: a [Subsystem] may name a discovery subsystem, and its controller must be
    // found (a discovery NQN connect is always a new controller, duplicate_connect or not).
    let mut ctrls = ctx.kernel.controllers();
    // Its report lists what it is connected as, like a log's.
    ctx.report.borrow_mut().read_log = true;
    // Kept connected means one controller per path, duplicate-connect or not: this runs again
    // whenever any controller goes, and each run would add one more.
    let hostnqn = effective_hostnqn(ctx, &key.addr, opts);
    if let Some(c) = sysfs::find(&ctrls, &key.addr, key.subnqn.as_str(), hostnqn) {
        debug!("{} at {} is connected as {}", key.subnqn, key.addr, c.name);
        ctx.report.borrow_mut().saw(c);
        return;
    }
    match connect_entry(ctx, &key, tokens, opts, &mut ctrls, Some(slot)) {
        EntryResult::Done => {}
        EntryResult::Excluded => {
            ctx.report.borrow_mut().error = Some("excluded: not connected".into());
        }
        r @ (EntryResult::Refused | EntryResult::Retry | EntryResult::AuthFailed) => {
            let mut report = ctx.report.borrow_mut();
            report.failed_entries = 0;
            report.error = report.entry_error.take();
            outcome.ok = false;
            outcome.auth_failed = r == EntryResult::AuthFailed;
            outcome.refused = r == EntryResult::Refused;
        }
    }
}

/// Delete our discovery controller `dc` at `addr` if sysfs proves it is still that one. False when
/// it is still ours and up (the delete failed); true when nothing of ours is left under that name
/// (deleted, gone, or another controller now: never deleted).
pub fn delete_if_ours(kernel: &dyn Kernel, dc: &DiscoveryCtrl, addr: &TransportAddr) -> bool {
    let name = format!("nvme{}", dc.instance);
    let c = match kernel.controller(&name) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.errno(),
                Some(rustix::io::Errno::NOENT | rustix::io::Errno::NODEV)
            ) =>
        {
            debug!("{name} is gone: nothing to delete");
            return true;
        }
        Err(e) => {
            // Cannot tell whose it is now: keep what we recorded, delete nothing.
            error!("{e}: not deleting {name}");
            return false;
        }
    };
    match ownership::may_delete(&c, dc, addr) {
        Ok(()) => match kernel.delete_controller(&name) {
            Ok(()) => {
                info!("deleted discovery controller {name} at {addr}");
                true
            }
            Err(e) => {
                error!("{e}");
                false
            }
        },
        Err(why) => {
            // Not ours any more, or gone: nothing of ours is left to delete under that name.
            warn!("not deleting {name} at {addr}: {why}");
            true
        }
    }
}

/// Does this slot keep a persistent discovery controller (`--persistent`, and not a referral that
/// cannot be kept)?
fn keeps_dc(ctx: &Context, slot: &Slot) -> bool {
    ctx.persistent && !slot.temporary
}

fn reconnecting(name: &str, state: sysfs::CtrlState) -> Error {
    // The kernel is reconnecting it and says `rediscover` when it is back; a second controller to
    // the same address now would be a duplicate later.
    Error::invalid(
        format!("read the discovery log of {name}"),
        format!(
            "it is {}, not live (the kernel is reconnecting it)",
            state.name()
        ),
    )
}

/// The discovery controller serving `slot`: the one it has if still the same and usable, an
/// existing one at the same address (somebody else's, used and never deleted), or a new one of ours.
fn discovery_controller(
    ctx: &Context,
    slot: &Slot,
    tokens: &SupportedTokens,
    opts: &ConnectOpts,
) -> Result<Option<DiscoveryCtrl>> {
    let hostnqn = effective_hostnqn(ctx, &slot.addr, opts);
    // One sysfs scan serves both: what the recorded name shows now, and the discovery
    // controllers at the address; nothing else is read.
    let recorded = slot.dc.map(|dc| dc.instance);
    let sysfs::Scan { ctrls, newest_ino } = ctx.kernel.discovery_controllers(&slot.addr, recorded);
    let recorded_now = recorded.and_then(|r| ctrls.iter().find(|c| c.instance == r));
    let (choice, why_not) =
        ownership::choose_dc(slot.dc.as_ref(), recorded_now, &ctrls, &slot.addr, hostnqn);
    if let Some(why) = why_not {
        debug!("not using the recorded controller for {}: {why}", slot.addr);
    }
    match choice {
        DcChoice::Use(dc) => {
            if dc.owner == Owner::Foreign && slot.dc.map(|d| d.instance) != Some(dc.instance) {
                debug!(
                    "using existing discovery controller nvme{} (foreign) for {}",
                    dc.instance, slot.addr
                );
            }
            return Ok(Some(dc));
        }
        DcChoice::Reconnecting(name, state) => return Err(reconnecting(&name, state)),
        DcChoice::Create => {}
    }
    let nqn = if slot.dc_nqn.is_empty() {
        DISCOVERY_NQN
    } else {
        slot.dc_nqn.as_str()
    };
    // What we were told of (a configuration line, a referral, an FC port) is checked before
    // every connect; only an address named on our own command line is an explicit order.
    // Not a failure to retry on a backoff: the next reason to discover (an event, SIGHUP) reads
    // the list again.
    if !ctx.is_explicit(slot) && excluded(ctx, &slot.addr, nqn, hostnqn) {
        ctx.report.borrow_mut().error = Some("excluded: no discovery controller made".into());
        return Ok(None);
    }
    if ctx.dry_run {
        info!(
            "dry run: would create a discovery controller at {}",
            slot.addr
        );
        return Ok(None);
    }
    let with_tls;
    let opts = if slot.tls && !opts.tls {
        with_tls = ConnectOpts {
            tls: true,
            ..opts.clone()
        };
        &with_tls
    } else {
        opts
    };
    let params = ConnectParams {
        subsysnqn: nqn,
        addr: &slot.addr,
        opts,
        kind: CtrlKind::Discovery {
            persistent: keeps_dc(ctx, slot),
        },
    };
    let mut options = fabrics::build_options(&params, tokens, ctx.hostnqn, ctx.hostid)?;
    (ctx.on_creating)(&slot.addr, Some(newest_ino));
    let connected = ctx.kernel.connect(&options);
    crate::secret::wipe(&mut options);
    if connected.is_err() {
        (ctx.on_creating)(&slot.addr, None);
    }
    match connected? {
        ConnectOutcome::Connected { instance, cntlid } => {
            let kind = if keeps_dc(ctx, slot) {
                "persistent"
            } else {
                "temporary"
            };
            info!(
                "created {kind} discovery controller nvme{instance} at {}",
                slot.addr
            );
            // Record what sysfs shows, identity included: a target may give its discovery
            // subsystem a unique NQN, and the next instance compares the state file with sysfs.
            let dc = match ctx.kernel.controller(&format!("nvme{instance}")) {
                Ok(c) => ownership::dc_of(&c, Owner::Ours),
                Err(e) => {
                    debug!("{e}");
                    DiscoveryCtrl {
                        instance,
                        owner: Owner::Ours,
                        cntlid,
                        subsysnqn: Nqn::new(nqn).unwrap_or_default(),
                        ino: 0,
                    }
                }
            };
            (ctx.on_created)(&dc);
            Ok(Some(dc))
        }
        ConnectOutcome::AlreadyConnected => {
            // Raced with somebody else's connect: use theirs.
            let ctrls = ctx.kernel.controllers();
            match ctrls.iter().find(|c| {
                c.is_discovery()
                    && c.claimed_by.is_none()
                    && sysfs::matches(c, &slot.addr, &c.subsysnqn, hostnqn)
            }) {
                Some(c) => Ok(Some(ownership::dc_of(c, Owner::Foreign))),
                None => Err(Error::invalid(
                    format!("connect discovery controller at {}", slot.addr),
                    "kernel says already connected, but no such controller is in sysfs",
                )),
            }
        }
    }
}

fn effective_hostnqn<'a>(
    ctx: &'a Context,
    addr: &'a TransportAddr,
    opts: &'a ConnectOpts,
) -> &'a str {
    if !addr.hostnqn.is_empty() {
        addr.hostnqn.as_str()
    } else if let Some(h) = opts.hostnqn.as_deref() {
        h
    } else {
        ctx.hostnqn
    }
}

/// One referral per address: a log may name one address many times (1,021 referrals to 127
/// ports in the bench's edge log), and each copy is ~850 bytes held until the engine has them.
/// The engine makes a slot from an address's first referral and then takes each later one's
/// `tls`, so the kept copy is the first with the last one's `tls`: what the engine ends with.
fn push_referral(referrals: &mut Vec<Referral>, r: Referral) {
    match referrals.iter_mut().find(|x| x.addr == r.addr) {
        Some(first) => first.tls = r.tls,
        None => referrals.push(r),
    }
}

/// Connect subsystems and collect referrals; entries that failed go into `outcome.failed_entries`
/// with their own retry (one unreachable port does not make the whole log run again).
fn handle_entries(
    ctx: &Context,
    slot: &Slot,
    entries: &LogEntries,
    tokens: &SupportedTokens,
    opts: &ConnectOpts,
    outcome: &mut Outcome,
) {
    // One sysfs snapshot per run, taken when an entry first needs it (after the discovery
    // controller's connect and log read: an I/O controller that went meanwhile must not be
    // taken for connected) and kept up to date with what this run connects.
    let mut ctrls: Option<Vec<Controller>> = None;
    for (i, entry) in entries.iter().enumerate() {
        if (ctx.stop_requested)() {
            info!(
                "stopping the discovery at {}: {} log entries left",
                slot.addr,
                entries.len() - i
            );
            ctx.report.borrow_mut().error = Some("stopped by a signal".into());
            outcome.ok = false;
            return;
        }
        let entry = &match entry {
            Ok(e) => e,
            Err(e) => {
                warn!("discovery log of {}: refused {}", slot.addr, e);
                continue;
            }
        };
        let addr = entry_addr(entry, &slot.addr);
        match entry.subtype {
            SubType::NvmSubsystem => {
                if entry.transport != slot.addr.transport {
                    // As nvme-cli: this host reaches the log over one transport, and an entry of
                    // another is for hosts on that fabric.
                    info!(
                        "discovery log of {}: {} is offered over {}, not {}: skipped",
                        slot.addr, entry.subnqn, entry.transport, slot.addr.transport
                    );
                    continue;
                }
                if entry.subnqn.as_str() == DISCOVERY_NQN {
                    warn!(
                        "discovery log of {}: entry {i} names the discovery NQN as an NVM subsystem: not connecting it as I/O",
                        slot.addr
                    );
                    continue;
                }
                if !ctx.connects_entries(slot) {
                    info!(
                        "found {} at {} (not connecting: no --autoconnect)",
                        entry.subnqn, addr
                    );
                    continue;
                }
                let key = EntryKey {
                    addr,
                    subnqn: entry.subnqn,
                    ask: ChannelAsk::of_entry(entry),
                };
                if ctx.waiting_entries.contains(&key) {
                    debug!(
                        "{} at {}: its own retry backoff runs, not tried now",
                        key.subnqn, key.addr
                    );
                    outcome.skipped_entries.push(key);
                    continue;
                }
                let ctrls = ctrls.get_or_insert_with(|| ctx.kernel.io_controllers());
                match connect_entry(ctx, &key, tokens, opts, ctrls, None) {
                    EntryResult::Retry => outcome.failed_entries.push(key),
                    EntryResult::AuthFailed => {
                        outcome.failed_entries.push(key);
                        outcome.auth_failed_entries.push(key);
                    }
                    EntryResult::Done | EntryResult::Refused | EntryResult::Excluded => {}
                }
            }
            SubType::Referral | SubType::CurrentDiscovery => {
                if let Some(mut r) = referral(entry, addr, &slot.addr) {
                    let ask = ChannelAsk::of_entry(entry);
                    match tls::choose(ask, opts.tls_always(), opts.tls_configured()) {
                        TlsChoice::Plain => {}
                        TlsChoice::Tls => r.tls = true,
                        refused => {
                            warn!(
                                "discovery log of {}: the referral to {} {}: not followed",
                                slot.addr,
                                r.addr,
                                tls::refusal(refused).unwrap_or_default()
                            );
                            continue;
                        }
                    }
                    let hostnqn = effective_hostnqn(ctx, &r.addr, opts);
                    if !excluded(ctx, &r.addr, entry.subnqn.as_str(), hostnqn) {
                        push_referral(&mut outcome.referrals, r);
                    }
                }
            }
            SubType::Unknown(t) => {
                debug!("discovery log entry with unknown subtype {t} at {addr}: ignored")
            }
        }
    }
}

/// Another discovery controller to visit, as nvme-cli decides it: not when the entry says it returns
/// the same information (DUPRETINFO), not the controller we are reading (a loop port has no address
/// of its own, so any loop entry is this one); kept persistent only if it answers to the well-known
/// discovery NQN or supports explicit persistent connections (EPCSD). A unique discovery NQN is
/// kept: the controller is created with it (and the `discovery` token).
fn referral(
    entry: &DiscoveryEntry,
    addr: TransportAddr,
    current: &TransportAddr,
) -> Option<Referral> {
    if entry.duplicate_returned_info() {
        debug!("{addr} returns the same discovery information (DUPRETINFO): not visited");
        return None;
    }
    let same = addr == *current
        || (addr.transport == Transport::Loop && current.transport == Transport::Loop);
    if entry.subtype == SubType::CurrentDiscovery && same {
        return None;
    }
    let well_known = entry.subnqn.as_str() == DISCOVERY_NQN;
    let persistent_ok = well_known || entry.explicit_persistent_connection();
    Some(Referral {
        addr,
        persistent_ok,
        dc_nqn: if well_known { Nqn::EMPTY } else { entry.subnqn },
        tls: false,
    })
}

/// The address of an entry, reached from the same host port as the discovery controller
/// (nvme-cli passes host_traddr and host_iface on), but only on the same transport: a TCP
/// host_iface means nothing to an FC or loop port.
fn entry_addr(entry: &DiscoveryEntry, via: &TransportAddr) -> TransportAddr {
    let mut addr = entry.to_addr();
    if entry.transport == via.transport {
        addr.host_traddr = via.host_traddr;
        addr.host_iface = via.host_iface;
    }
    addr.hostnqn = via.hostnqn;
    addr
}

/// The exclusion that forbids connecting `nqn` at `addr` as `hostnqn`, logged once per run as one
/// info line naming the entry and where it was written.
fn excluded(ctx: &Context, addr: &TransportAddr, nqn: &str, hostnqn: &str) -> bool {
    if ctx.exclusions.is_empty() {
        return false;
    }
    let c = Candidate {
        transport: addr.transport,
        traddr: addr.traddr.as_str(),
        trsvcid: addr.trsvcid.as_str(),
        nqn,
        host_traddr: addr.host_traddr.as_str(),
        host_iface: addr.host_iface.as_str(),
        hostnqn,
        hostid: ctx.hostid.unwrap_or(""),
    };
    match ctx.exclusions.excluded_by(&c) {
        Some(x) => {
            info!(
                "{nqn} at {addr}: excluded by {} ({x}): not connected",
                x.source
            );
            true
        }
        None => false,
    }
}

/// How connecting one entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryResult {
    /// Connected, or already connected.
    Done,
    /// Refused for a reason retrying cannot fix (a bad value, an option the kernel lacks).
    Refused,
    /// nvme-cli 3's exclusion list forbids it: not tried.
    Excluded,
    /// Failed on the target's side: retry it on its own backoff.
    Retry,
    /// The target refused authentication: retried on the longest backoff.
    AuthFailed,
}

/// How a connect goes wrong on authentication ([`is_auth_failure`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthUse {
    /// TLS was asked for (`tls` sent: NVMe/TCP only).
    pub tls: bool,
    /// A DH-HMAC-CHAP key was sent.
    pub dhchap: bool,
    /// The write waited out the admin timeout ([`waited_out`]).
    pub slow: bool,
}

/// Did a failed connect write wait out the admin timeout? A command the target never answers
/// completes only when its timer fires, `nvme_core.admin_timeout` after it was sent (read from
/// the running kernel: the VM tests boot with 10 s), plus whatever the transport took before it,
/// so the write took at least that long; half a second of slack covers the timer's rounding. A
/// quick EIO that only waited for the host-wide lock another tool's connect held is shorter.
pub fn waited_out(elapsed: std::time::Duration, admin_timeout: std::time::Duration) -> bool {
    elapsed + std::time::Duration::from_millis(500) >= admin_timeout
}

impl AuthUse {
    /// For a connection with `opts` to `transport`; a discovery controller is sent keys only
    /// when meant for it.
    pub fn of(opts: &ConnectOpts, transport: Transport, discovery: bool, tls: bool) -> AuthUse {
        let keyed = opts.dhchap_secret.is_some() || opts.dhchap_ctrl_secret.is_some();
        AuthUse {
            tls: transport == Transport::Tcp && (tls || opts.tls_always()),
            dhchap: keyed && (!discovery || opts.dhchap_for_discovery),
            slow: false,
        }
    }
}

/// The kernel's answer to a connect whose authentication failed: EKEYREJECTED (the target refused
/// the key, or the controller's key did not match), ENOKEY (it wants a key and none was given).
/// With a DH-HMAC-CHAP key sent, an EIO after the admin timeout too: when nvmet refuses a host
/// key it may drop the connection at once, and kernel 6.12 then waits out its admin timeout and
/// returns the NVMe status it made up for the dead queue ("qid 0: authentication failed, error
/// 880" in its log), which the write turns into EIO; retrying that on the short backoff only
/// repeats the wait. A quick EIO (the subsystem not linked to the port yet, the host not
/// allowed yet, a busy controller) is an ordinary failure. With TLS, ENOKEY is a PSK not in the
/// keyring (or no key of that serial): not an authentication failure but a key that may come
/// any moment, as nvme-cli's udev rule imports them when nvme_tcp loads, which our first connect
/// may be what caused; it is retried on the ordinary backoff.
pub fn is_auth_failure(e: &crate::error::Error, how: AuthUse) -> bool {
    use rustix::io::Errno;
    match e.errno() {
        Some(Errno::KEYREJECTED) => true,
        Some(Errno::NOKEY) => !how.tls,
        Some(Errno::IO) => how.dhchap && how.slow,
        _ => false,
    }
}

/// Connect the subsystem `key.subnqn` at `key.addr` unless it is connected already.
pub fn connect_entry(
    ctx: &Context,
    key: &EntryKey,
    tokens: &SupportedTokens,
    opts: &ConnectOpts,
    ctrls: &mut Vec<Controller>,
    failing: Option<&Slot>,
) -> EntryResult {
    let subnqn = key.subnqn.as_str();
    let addr = &key.addr;
    let hostnqn = effective_hostnqn(ctx, addr, opts);
    if !opts.duplicate_connect {
        if let Some(c) = sysfs::find(ctrls, addr, subnqn, hostnqn) {
            debug!("{} at {} is already connected as {}", subnqn, addr, c.name);
            ctx.report.borrow_mut().saw(c);
            return EntryResult::Done;
        }
    }
    if excluded(ctx, addr, subnqn, hostnqn) {
        return EntryResult::Excluded;
    }
    let own_keys = ctx.subsystem_keys.iter().find(|k| k.nqn == key.subnqn);
    let keyed;
    let opts = match own_keys {
        Some(k) => {
            // Per key: a [Subsystem] that sets only the controller key keeps the host key the
            // connection has (and the other way round).
            keyed = ConnectOpts {
                dhchap_secret: k.secret.clone().or_else(|| opts.dhchap_secret.clone()),
                dhchap_ctrl_secret: k
                    .ctrl_secret
                    .clone()
                    .or_else(|| opts.dhchap_ctrl_secret.clone()),
                ..opts.clone()
            };
            &keyed
        }
        None => opts,
    };
    let with_tls;
    let opts = match tls::choose(key.ask, opts.tls_always(), opts.tls_configured()) {
        TlsChoice::Plain => opts,
        TlsChoice::Tls if opts.tls => opts,
        TlsChoice::Tls => {
            with_tls = ConnectOpts {
                tls: true,
                ..opts.clone()
            };
            &with_tls
        }
        refused @ (TlsChoice::NotConfigured { .. } | TlsChoice::Unsupported { .. }) => {
            let why = format!(
                "{subnqn} at {addr} {}: not connected",
                tls::refusal(refused).unwrap_or_default()
            );
            warn!("{why}");
            let mut report = ctx.report.borrow_mut();
            report.failed_entries += 1;
            report.entry_error = Some(why);
            return EntryResult::Refused;
        }
    };
    let params = ConnectParams {
        subsysnqn: subnqn,
        addr,
        opts,
        kind: CtrlKind::Io,
    };
    let options = fabrics::build_options(&params, tokens, ctx.hostnqn, ctx.hostid);
    if ctx.dry_run {
        // The exact string, so an operator (and `make bench`'s floor) can write it by hand.
        match options {
            Ok(mut o) => {
                info!(
                    "dry run: would connect {subnqn} at {addr}: would write '{}'",
                    crate::secret::scrub(&o)
                );
                crate::secret::wipe(&mut o);
            }
            Err(e) => info!("dry run: would not connect {subnqn} at {addr}: {e}"),
        }
        return EntryResult::Done;
    }
    let started = std::time::Instant::now();
    let mut made = None;
    let result = options.and_then(|mut o| {
        let r = ctx.kernel.connect(&o);
        if let Ok(ConnectOutcome::Connected { instance, cntlid }) = r {
            made = sysfs::written(&o, instance, cntlid);
        }
        crate::secret::wipe(&mut o);
        r
    });
    let slow = result.is_err() && waited_out(started.elapsed(), ctx.kernel.admin_timeout());
    match result {
        Ok(ConnectOutcome::Connected { instance, .. }) => {
            info!("connected {} at {} as nvme{}", subnqn, addr, instance);
            // Later entries for the same subsystem and address must see it: the record is what
            // we wrote, with only the state and identity read back.
            match made.map(|c| ctx.kernel.complete(c)) {
                Some(Ok(Some(c))) => {
                    ctx.report.borrow_mut().saw(&c);
                    ctrls.push(c);
                }
                Some(Ok(None)) => debug!("nvme{instance} is gone already"),
                Some(Err(e)) => debug!("{e}"),
                None => {}
            }
            EntryResult::Done
        }
        Ok(ConnectOutcome::AlreadyConnected) => {
            debug!("{} at {} is already connected", subnqn, addr);
            // Made since our snapshot (by somebody else): list it all the same.
            if let Some(c) = sysfs::find(&ctx.kernel.controllers(), addr, subnqn, hostnqn) {
                ctx.report.borrow_mut().saw(c);
            }
            EntryResult::Done
        }
        Err(e) => {
            // An authentication failure is said by the engine, once per change of state; a
            // direct path's refusal before the write once (refused_again).
            let how = AuthUse {
                slow,
                ..AuthUse::of(opts, addr.transport, false, false)
            };
            let auth = is_auth_failure(&e, how);
            if auth || failing.is_some_and(|slot| refused_again(&e, slot)) {
                debug!("{e}");
            } else {
                error!("{e}");
            }
            let mut report = ctx.report.borrow_mut();
            report.failed_entries += 1;
            report.entry_error = Some(e.to_string());
            // A refused value or option string will not get better by retrying; target-side errors may.
            use rustix::io::Errno;
            match e.errno() {
                _ if auth => EntryResult::AuthFailed,
                None | Some(Errno::INVAL) | Some(Errno::NODEV) => EntryResult::Refused,
                Some(_) => EntryResult::Retry,
            }
        }
    }
}

/// Retry one entry that failed before, outside a discovery run.
pub fn retry_entry(ctx: &Context, key: &EntryKey, opts_ref: OptsRef) -> RetryResult {
    if !ctx.kernel.fabrics_present() {
        return RetryResult::Failed;
    }
    let tokens = match ctx.kernel.supported_tokens() {
        Ok(t) => t,
        Err(e) => {
            error!("{e}");
            return RetryResult::Failed;
        }
    };
    let opts = ctx.opts_for(opts_ref);
    let mut ctrls = ctx.kernel.io_controllers();
    match connect_entry(ctx, key, &tokens, &opts, &mut ctrls, None) {
        EntryResult::Retry => RetryResult::Failed,
        EntryResult::AuthFailed => RetryResult::AuthFailed,
        EntryResult::Done => RetryResult::Done,
        EntryResult::Refused | EntryResult::Excluded => RetryResult::Dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::FixedStr;
    use crate::fake_kernel::{FakeKernel, FakePort};
    use crate::table::Origin;

    fn entry(
        subtype: SubType,
        eflags: u16,
        subnqn: &str,
        traddr: &str,
        trsvcid: &str,
    ) -> DiscoveryEntry {
        DiscoveryEntry {
            transport: Transport::Tcp,
            adrfam: 1,
            subtype,
            treq: 0,
            portid: 1,
            cntlid: 0xffff,
            asqsz: 32,
            eflags,
            tcp_sectype: 0,
            trsvcid: FixedStr::new(trsvcid).unwrap(),
            subnqn: Nqn::new(subnqn).unwrap(),
            traddr: FixedStr::new(traddr).unwrap(),
        }
    }

    fn visit(e: &DiscoveryEntry, current: &TransportAddr) -> Option<Referral> {
        referral(e, entry_addr(e, current), current)
    }

    #[test]
    fn referrals_follow_nvme_cli_rules() {
        let current = TransportAddr::new(Transport::Tcp, "10.0.0.1", "8009", "", "eth0").unwrap();
        // A plain referral to the well-known discovery NQN: visited, may be persistent, same host port.
        let r = visit(
            &entry(SubType::Referral, 0, DISCOVERY_NQN, "10.0.0.2", "8009"),
            &current,
        )
        .unwrap();
        assert!(r.persistent_ok);
        assert_eq!(r.addr.host_iface.as_str(), "eth0");
        // DUPRETINFO: same information elsewhere, not visited.
        assert_eq!(
            visit(
                &entry(SubType::Referral, 1, DISCOVERY_NQN, "10.0.0.3", "8009"),
                &current
            ),
            None
        );
        // A unique discovery NQN without EPCSD: visited, but only with a temporary controller.
        let unique = "nqn.2024-01.io.example:dc";
        assert!(
            !visit(
                &entry(SubType::Referral, 0, unique, "10.0.0.4", "8009"),
                &current
            )
            .unwrap()
            .persistent_ok
        );
        assert!(
            visit(
                &entry(SubType::Referral, 2, unique, "10.0.0.4", "8009"),
                &current
            )
            .unwrap()
            .persistent_ok
        );
        // The current discovery subsystem: this port is not visited again, another port is.
        assert_eq!(
            visit(
                &entry(
                    SubType::CurrentDiscovery,
                    0,
                    DISCOVERY_NQN,
                    "10.0.0.1",
                    "8009"
                ),
                &current
            ),
            None
        );
        assert!(
            visit(
                &entry(
                    SubType::CurrentDiscovery,
                    0,
                    DISCOVERY_NQN,
                    "10.0.0.9",
                    "8009"
                ),
                &current
            )
            .is_some()
        );
    }

    #[test]
    fn loop_current_discovery_is_this_controller() {
        let current = TransportAddr::new(Transport::Loop, "", "", "", "").unwrap();
        let mut e = entry(SubType::CurrentDiscovery, 0, DISCOVERY_NQN, "1", "");
        e.transport = Transport::Loop;
        assert_eq!(visit(&e, &current), None);
    }

    const SUB: &str = "nqn.2024-01.io.example:sub1";
    const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:test";

    fn tcp(traddr: &str, trsvcid: &str) -> TransportAddr {
        TransportAddr::new(Transport::Tcp, traddr, trsvcid, "", "").unwrap()
    }

    fn kernel_with(ports: Vec<FakePort>) -> FakeKernel {
        let k = FakeKernel::default();
        k.state.borrow_mut().ports = ports;
        k
    }

    fn port(traddr: &str, trsvcid: &str, subs: &[&str]) -> FakePort {
        let mut p = FakePort::new(Transport::Tcp, traddr, trsvcid);
        p.subsystems = subs.iter().map(|s| s.to_string()).collect();
        p
    }

    fn with_ctx<T>(k: &FakeKernel, persistent: bool, f: impl FnOnce(&Context) -> T) -> T {
        with_ctx_excluding(k, persistent, &ExclusionList::default(), f)
    }

    fn with_ctx_excluding<T>(
        k: &FakeKernel,
        persistent: bool,
        exclusions: &ExclusionList,
        f: impl FnOnce(&Context) -> T,
    ) -> T {
        with_ctx_reporting(k, persistent, exclusions, &Default::default(), f)
    }

    fn with_ctx_reporting<T>(
        k: &FakeKernel,
        persistent: bool,
        exclusions: &ExclusionList,
        report: &RefCell<Report>,
        f: impl FnOnce(&Context) -> T,
    ) -> T {
        with_ctx_sources(k, persistent, exclusions, report, &[], f)
    }

    fn with_ctx_sources<T>(
        k: &FakeKernel,
        persistent: bool,
        exclusions: &ExclusionList,
        report: &RefCell<Report>,
        sources: &[DiscoverySource],
        f: impl FnOnce(&Context) -> T,
    ) -> T {
        let opts = ConnectOpts::default();
        with_ctx_opts(k, persistent, exclusions, report, sources, &opts, f)
    }

    /// Persistent, nothing excluded, no sources: only the global options differ.
    fn with_opts<T>(
        k: &FakeKernel,
        report: &RefCell<Report>,
        opts: &ConnectOpts,
        f: impl FnOnce(&Context) -> T,
    ) -> T {
        with_ctx_opts(k, true, &ExclusionList::default(), report, &[], opts, f)
    }

    fn with_ctx_opts<T>(
        k: &FakeKernel,
        persistent: bool,
        exclusions: &ExclusionList,
        report: &RefCell<Report>,
        sources: &[DiscoverySource],
        opts: &ConnectOpts,
        f: impl FnOnce(&Context) -> T,
    ) -> T {
        let created = |_: &DiscoveryCtrl| {};
        let creating = |_: &TransportAddr, _: Option<u64>| {};
        let stop = || false;
        let ctx = Context {
            kernel: k,
            hostnqn: HOST,
            hostid: None,
            global_opts: opts,
            sources,
            subsystem_keys: &[],
            autoconnect: true,
            nbft_from: usize::MAX,
            persistent,
            dry_run: false,
            waiting_entries: &[],
            on_created: &created,
            on_creating: &creating,
            stop_requested: &stop,
            exclusions,
            report,
        };
        f(&ctx)
    }

    fn io_count(k: &FakeKernel, nqn: &str) -> usize {
        k.controllers()
            .iter()
            .filter(|c| c.subsysnqn == nqn)
            .count()
    }

    #[test]
    fn a_subsystems_own_keys_win_and_the_discovery_controller_gets_none_it_was_not_given() {
        const OWN: &str = "nqn.2024-01.io.example:own";
        const OWN_CTRL: &str = "nqn.2024-01.io.example:own-ctrl";
        let host = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
        let own =
            "DHHC-1:02:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wyg3Bcw==:";
        let k = kernel_with(vec![port("10.0.0.1", "8009", &[SUB, OWN, OWN_CTRL])]);
        let secret = |v| crate::secret::Secret::load(v, "test").ok();
        let opts = ConnectOpts {
            dhchap_secret: secret(host),
            ..Default::default()
        };
        let keys = [
            crate::settings::SubsystemKeys {
                nqn: Nqn::new(OWN).unwrap(),
                secret: secret(own),
                ctrl_secret: None,
            },
            crate::settings::SubsystemKeys {
                nqn: Nqn::new(OWN_CTRL).unwrap(),
                secret: None,
                ctrl_secret: secret(own),
            },
        ];
        let (created, creating, stop) = (
            |_: &DiscoveryCtrl| {},
            |_: &TransportAddr, _: Option<u64>| {},
            || false,
        );
        let report = RefCell::default();
        let ctx = Context {
            kernel: &k,
            hostnqn: HOST,
            hostid: None,
            global_opts: &opts,
            sources: &[],
            subsystem_keys: &keys,
            autoconnect: true,
            nbft_from: usize::MAX,
            persistent: true,
            dry_run: false,
            waiting_entries: &[],
            on_created: &created,
            on_creating: &creating,
            stop_requested: &stop,
            exclusions: &ExclusionList::default(),
            report: &report,
        };
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        assert!(run(&ctx, &slot).ok);
        let written = k.state.borrow().written.clone();
        let find = |nqn: &str| {
            written
                .iter()
                .find(|w| w.starts_with(&format!("nqn={nqn},")))
                .cloned()
                .unwrap()
        };
        let dc = find(DISCOVERY_NQN);
        assert!(
            !dc.contains("dhchap"),
            "a key for every connection is not the DC's: {dc}"
        );
        assert!(find(SUB).contains(&format!("dhchap_secret={host}")));
        let o = find(OWN);
        assert!(
            o.contains(&format!("dhchap_secret={own}")) && !o.contains(host),
            "{o}"
        );
        // Only its controller key is its own: the host key stays the connection's.
        let o = find(OWN_CTRL);
        assert!(
            o.contains(&format!("dhchap_secret={host},dhchap_ctrl_secret={own}")),
            "{o}"
        );
    }

    #[test]
    fn an_entry_that_asks_for_tls_gets_it_when_configured_and_one_that_requires_it_is_said_otherwise()
     {
        const OFFERED: &str = "nqn.2024-01.io.example:offered";
        let mut required = port("10.0.0.1", "8009", &[SUB]);
        required.treq_sectype = (0b01, 2);
        let mut offered = port("10.0.0.2", "8009", &[OFFERED]);
        offered.treq_sectype = (0b10, 2);
        let plain_port = port("10.0.0.3", "8009", &["nqn.2024-01.io.example:plain"]);
        let slots = [
            Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global),
            Slot::new(tcp("10.0.0.2", "8009"), Origin::Config, OptsRef::Global),
            Slot::new(tcp("10.0.0.3", "8009"), Origin::Config, OptsRef::Global),
        ];
        let go = |opts: ConnectOpts| {
            let k = kernel_with(vec![required.clone(), offered.clone(), plain_port.clone()]);
            let report = RefCell::default();
            let outcomes: Vec<Outcome> = with_opts(&k, &report, &opts, |ctx| {
                slots.iter().map(|s| run(ctx, s)).collect()
            });
            let written = k.state.borrow().written.clone();
            (written, outcomes, report.into_inner())
        };
        let io = |w: &[String], nqn: &str| {
            w.iter()
                .find(|w| w.starts_with(&format!("nqn={nqn},")))
                .cloned()
        };
        // Nothing configured: the required one is not tried, and not queued for a retry; the
        // offered one is connected in the clear.
        let (w, outcomes, report) = go(ConnectOpts::default());
        assert_eq!(io(&w, SUB), None, "{w:?}");
        assert!(outcomes[0].failed_entries.is_empty());
        let why = report.entry_error.unwrap_or_default();
        assert!(
            why.contains("requires TLS (tls1.3), and none is configured"),
            "{why}"
        );
        let o = io(&w, OFFERED).unwrap();
        assert!(!o.contains("tls"), "{o}");
        assert!(w.iter().all(|w| !w.contains("tls")), "{w:?}");
        // A keyring: both TLS entries get tls and the keyring; the plain entry and the
        // discovery controllers do not.
        let (w, _, _) = go(ConnectOpts {
            keyring: Some(99),
            ..Default::default()
        });
        for nqn in [SUB, OFFERED] {
            let s = io(&w, nqn).unwrap();
            assert!(s.ends_with(",tls,keyring=99"), "{s}");
        }
        for nqn in [DISCOVERY_NQN, "nqn.2024-01.io.example:plain"] {
            assert!(
                w.iter()
                    .filter(|w| w.starts_with(&format!("nqn={nqn},")))
                    .all(|w| !w.contains("tls")),
                "{w:?}"
            );
        }
        // --tls: every connection, discovery controllers too, as nvme-cli's connect-all --tls.
        let (w, _, _) = go(ConnectOpts {
            tls: true,
            ..Default::default()
        });
        assert!(w.iter().all(|w| w.ends_with(",tls")), "{w:?}");
    }

    #[test]
    fn an_address_named_by_many_referrals_is_handed_over_once() {
        let mut p = port("10.0.0.1", "8009", &[]);
        for i in 0..300 {
            p.referrals.push((
                Transport::Tcp,
                format!("10.0.0.{}", 2 + i % 3),
                "8009".into(),
                DISCOVERY_NQN.into(),
            ));
        }
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let k = kernel_with(vec![p]);
        let report = RefCell::default();
        let o = with_opts(&k, &report, &ConnectOpts::default(), |ctx| run(ctx, &slot));
        let addrs: Vec<&str> = o.referrals.iter().map(|r| r.addr.traddr.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    }

    #[test]
    fn a_repeated_referral_keeps_the_first_and_takes_the_last_tls() {
        let first = Referral {
            addr: tcp("10.0.0.2", "8009"),
            persistent_ok: true,
            dc_nqn: Nqn::EMPTY,
            tls: false,
        };
        let mut refs = Vec::new();
        push_referral(&mut refs, first);
        push_referral(
            &mut refs,
            Referral {
                persistent_ok: false,
                tls: true,
                ..first
            },
        );
        assert_eq!(refs, [Referral { tls: true, ..first }]);
        let other = Referral {
            addr: tcp("10.0.0.3", "8009"),
            ..first
        };
        push_referral(&mut refs, other);
        assert_eq!(refs.len(), 2);
    }

    #[test]
    fn a_referral_that_requires_tls_is_followed_with_it_or_said_and_left() {
        let mut p = port("10.0.0.1", "8009", &[]);
        p.referrals.push((
            Transport::Tcp,
            "10.0.0.9".into(),
            "8009".into(),
            DISCOVERY_NQN.into(),
        ));
        p.treq_sectype = (0b01, 2);
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let go = |opts: ConnectOpts| {
            let k = kernel_with(vec![p.clone()]);
            let report = RefCell::default();
            with_opts(&k, &report, &opts, |ctx| run(ctx, &slot))
        };
        assert!(go(ConnectOpts::default()).referrals.is_empty());
        let o = go(ConnectOpts {
            keyring: Some(0),
            ..Default::default()
        });
        assert_eq!(o.referrals.len(), 1);
        assert!(o.referrals[0].tls);
        // The referred slot's discovery controller is then reached with tls, though its
        // options (the parent's) do not always use it.
        let k = kernel_with(vec![port("10.0.0.9", "8009", &[SUB])]);
        let mut referred = Slot::new(tcp("10.0.0.9", "8009"), Origin::Referral, OptsRef::Global);
        referred.tls = true;
        let opts = ConnectOpts {
            keyring: Some(0),
            ..Default::default()
        };
        with_opts(&k, &RefCell::default(), &opts, |ctx| run(ctx, &referred));
        let w = k.state.borrow().written.clone();
        let dc = w
            .iter()
            .find(|w| w.starts_with(&format!("nqn={DISCOVERY_NQN},")))
            .unwrap();
        assert!(dc.ends_with(",tls"), "{dc}");
        let io = w
            .iter()
            .find(|w| w.starts_with(&format!("nqn={SUB},")))
            .unwrap();
        assert!(!io.contains("tls"), "an entry that names no TLS: {io}");
    }

    #[test]
    fn a_refusal_before_the_write_is_said_when_the_path_starts_failing_only() {
        use crate::error::Error;
        let mut slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let ours = Error::invalid(
            "connect with dhchap_secret",
            "this kernel has no DH-HMAC-CHAP support",
        );
        let kernels = Error::os("connect", rustix::io::Errno::CONNREFUSED);
        assert!(!refused_again(&ours, &slot), "the first time is said");
        slot.failures = 3;
        assert!(
            !refused_again(&ours, &slot),
            "failing for another reason before: said"
        );
        slot.refusing = true;
        assert!(refused_again(&ours, &slot));
        assert!(
            !refused_again(&kernels, &slot),
            "the target's answers are said every time"
        );
    }

    #[test]
    fn a_keyed_eio_is_a_refused_key_only_after_the_running_kernels_admin_timeout() {
        use crate::error::Error;
        use rustix::io::Errno;
        use std::time::Duration;
        let eio = Error::os("connect", Errno::IO);
        let at = |secs: f64, admin: u64| {
            let fake = FakeKernel::default();
            fake.state.borrow_mut().admin_timeout = Some(Duration::from_secs(admin));
            let how = AuthUse {
                dhchap: true,
                slow: waited_out(Duration::from_secs_f64(secs), fake.admin_timeout()),
                ..AuthUse::default()
            };
            is_auth_failure(&eio, how)
        };
        // The VM's 10 s: an EIO after 10.1 s is the refused key, one after 6 s is not (it may
        // have waited for the host-wide lock), and neither is at the default 60 s.
        assert!(at(10.1, 10) && at(9.6, 10));
        assert!(!at(6.0, 10) && !at(9.0, 10));
        assert!(!at(10.1, 60) && !at(30.0, 60));
        assert!(at(61.0, 60));
        assert_eq!(
            FakeKernel::default().admin_timeout(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_refused_key_is_an_authentication_failure_and_a_missing_psk_is_not() {
        use crate::error::Error;
        use rustix::io::Errno;
        let e = |n| Error::os("connect", n);
        let plain = AuthUse::default();
        let tls = AuthUse { tls: true, ..plain };
        let keyed = AuthUse {
            dhchap: true,
            slow: true,
            ..plain
        };
        assert!(is_auth_failure(&e(Errno::KEYREJECTED), plain));
        assert!(is_auth_failure(&e(Errno::KEYREJECTED), tls));
        assert!(is_auth_failure(&e(Errno::NOKEY), plain));
        assert!(!is_auth_failure(&e(Errno::NOKEY), tls));
        assert!(!is_auth_failure(&e(Errno::CONNREFUSED), keyed));
        assert!(!is_auth_failure(&Error::invalid("connect", "bad"), plain));
        // A refused host key can come back as EIO after the admin timeout (kernel 6.12): only a
        // keyed connect that took that long reads it so; a quick EIO is the target not ready.
        assert!(is_auth_failure(&e(Errno::IO), keyed));
        assert!(!is_auth_failure(&e(Errno::IO), plain));
        let quick = AuthUse {
            slow: false,
            ..keyed
        };
        assert!(!is_auth_failure(&e(Errno::IO), quick));
        // A key for every connection is not sent to a discovery controller, so its EIO is not one.
        let secret = crate::secret::Secret::load(
            "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
            "t",
        )
        .ok();
        let global = ConnectOpts {
            dhchap_secret: secret,
            ..Default::default()
        };
        assert!(AuthUse::of(&global, Transport::Tcp, false, false).dhchap);
        assert!(!AuthUse::of(&global, Transport::Tcp, true, false).dhchap);
        assert!(AuthUse::of(&global, Transport::Tcp, true, true).tls);
        // No TLS on RDMA, whatever --tls says: its ENOKEY is DH-HMAC-CHAP's.
        assert!(!AuthUse::of(&global, Transport::Rdma, true, true).tls);
    }

    #[test]
    fn an_excluded_subsystem_or_referral_is_not_connected_and_not_retried() {
        const OTHER: &str = "nqn.2024-01.io.example:sub2";
        let mut p = port("10.0.0.1", "8009", &[SUB, OTHER]);
        p.referrals.push((
            Transport::Tcp,
            "10.0.0.2".into(),
            "8009".into(),
            DISCOVERY_NQN.into(),
        ));
        let k = kernel_with(vec![p]);
        let (list, warnings) = ExclusionList::from_files(&[(
            "/etc/nvme/exclusions.conf".into(),
            format!(
                "[exclusions]\nexclusion = nqn={OTHER}\nexclusion = transport=tcp;traddr=10.0.0.2\n"
            ),
        )]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let out = with_ctx_excluding(&k, true, &list, |ctx| run(ctx, &slot));
        assert!(out.ok, "{out:?}");
        assert_eq!(io_count(&k, SUB), 1);
        assert_eq!(io_count(&k, OTHER), 0, "excluded by nqn");
        assert!(
            out.failed_entries.is_empty(),
            "an exclusion is not a failure to retry"
        );
        assert!(
            out.referrals.is_empty(),
            "the referral is excluded by address"
        );
        // The list changes (the shell re-reads it): the next run connects it.
        let out = with_ctx(&k, true, |ctx| run(ctx, &slot));
        assert!(out.ok);
        assert_eq!(io_count(&k, OTHER), 1);
        assert_eq!(out.referrals.len(), 1);
    }

    #[test]
    fn the_report_names_the_controllers_a_log_led_to_and_why_a_run_failed() {
        const DOWN: &str = "nqn.2024-01.io.example:down";
        let mut p = port("10.0.0.1", "8009", &[SUB, DOWN]);
        p.refused.push(DOWN.into());
        let k = kernel_with(vec![p]);
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let none = ExclusionList::default();
        let report = RefCell::default();
        let out = with_ctx_reporting(&k, true, &none, &report, |ctx| run(ctx, &slot));
        assert!(out.ok);
        let r = report.take();
        assert!(r.read_log && r.error.is_none(), "{r:?}");
        let io: Vec<(&str, &str)> = r
            .connected
            .iter()
            .map(|c| (c.name.as_str(), c.subsysnqn.as_str()))
            .collect();
        let sub = k
            .controllers()
            .into_iter()
            .find(|c| c.subsysnqn == SUB)
            .unwrap();
        assert_eq!(io, [(sub.name.as_str(), SUB)]);
        assert_eq!(r.connected[0].ino, sub.ino);
        assert_eq!(r.failed_entries, 1);
        assert!(
            r.error_text().starts_with("1 subsystem not connected"),
            "{}",
            r.error_text()
        );
        // A rerun finds it connected: still listed.
        let mut slot = slot;
        slot.dc = out.dc;
        with_ctx_reporting(&k, true, &none, &report, |ctx| run(ctx, &slot));
        assert_eq!(report.take().connected.len(), 1);
        // The port goes: the run fails before any log, with the reason.
        k.state.borrow_mut().ports[0].up = false;
        let gone = Slot::new(tcp("10.0.0.1", "4420"), Origin::Config, OptsRef::Global);
        let out = with_ctx_reporting(&k, true, &none, &report, |ctx| run(ctx, &gone));
        assert!(!out.ok);
        let r = report.take();
        assert!(!r.read_log && r.connected.is_empty(), "{r:?}");
        let why = r.error.clone().expect("a failed run says why");
        assert!(why.starts_with("discovery at tcp"), "{why}");
        assert_eq!(r.error_text(), why);
    }

    #[test]
    fn a_direct_subsystem_is_connected_once_without_discovery_and_a_failure_says_why() {
        let k = kernel_with(vec![port("10.0.0.1", "4420", &[SUB])]);
        let mut slot = Slot::new(tcp("10.0.0.1", "4420"), Origin::Config, OptsRef::Global);
        slot.subsystem = Nqn::new(SUB).unwrap();
        let none = ExclusionList::default();
        let report = RefCell::default();
        for _ in 0..2 {
            let out = with_ctx_reporting(&k, true, &none, &report, |ctx| run(ctx, &slot));
            assert!(out.ok && out.dc.is_none(), "{out:?}");
            assert_eq!(k.controllers().len(), 1, "no discovery controller, one I/O");
            assert_eq!(io_count(&k, SUB), 1);
            assert_eq!(k.state.borrow().log_reads, 0);
            let r = report.take();
            assert_eq!(r.connected.len(), 1, "{r:?}");
            assert_eq!(r.error_text(), "");
        }
        // Excluded: not connected, and not a failure to retry.
        let (list, _) = ExclusionList::from_files(&[(
            "/etc/nvme/exclusions.conf".into(),
            format!("[exclusions]\nexclusion = nqn={SUB}\n"),
        )]);
        let mut st = k.state.borrow_mut();
        let n = st.ctrls.keys().next().copied().unwrap();
        st.remove(n);
        drop(st);
        let out = with_ctx_reporting(&k, true, &list, &report, |ctx| run(ctx, &slot));
        assert!(out.ok);
        assert_eq!(io_count(&k, SUB), 0);
        assert!(report.take().error_text().starts_with("excluded"));
        // The port is down: the run fails with the connect's error.
        k.state.borrow_mut().ports[0].up = false;
        let out = with_ctx_reporting(&k, true, &none, &report, |ctx| run(ctx, &slot));
        assert!(!out.ok);
        let r = report.take();
        assert!(r.error.is_some() && r.connected.is_empty(), "{r:?}");
        assert_eq!(io_count(&k, SUB), 0);
    }

    #[test]
    fn a_direct_subsystem_with_duplicate_connect_is_still_one_controller() {
        let k = kernel_with(vec![port("10.0.0.1", "4420", &[SUB])]);
        let mut slot = Slot::new(tcp("10.0.0.1", "4420"), Origin::Config, OptsRef::Source(0));
        slot.subsystem = Nqn::new(SUB).unwrap();
        let src = DiscoverySource {
            addr: slot.addr,
            opts: ConnectOpts {
                duplicate_connect: true,
                ..Default::default()
            },
            persistent: false,
            subsystem: slot.subsystem,
            explicit: false,
        };
        let none = ExclusionList::default();
        let report = RefCell::default();
        for _ in 0..3 {
            let out = with_ctx_sources(
                &k,
                true,
                &none,
                &report,
                std::slice::from_ref(&src),
                |ctx| run(ctx, &slot),
            );
            assert!(out.ok);
            assert_eq!(report.take().connected.len(), 1);
        }
        assert_eq!(
            io_count(&k, SUB),
            1,
            "a rerun on every removal must not add controllers"
        );
    }

    #[test]
    fn an_excluded_discovery_address_gets_no_controller_unless_our_command_line_names_it() {
        let k = kernel_with(vec![port("10.0.0.1", "8009", &[SUB])]);
        let (list, _) = ExclusionList::from_files(&[(
            "/etc/nvme/exclusions.conf".into(),
            "[exclusions]\nexclusion = transport=tcp;traddr=10.0.0.1;trsvcid=8009\n".into(),
        )]);
        let source = |explicit| DiscoverySource {
            addr: tcp("10.0.0.1", "8009"),
            opts: ConnectOpts::default(),
            persistent: true,
            subsystem: Nqn::EMPTY,
            explicit,
        };
        let report = RefCell::default();
        // A configuration line, and a referral reached with the options of a command-line
        // address: both checked.
        let line = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Source(0));
        let referral = Slot::new(
            tcp("10.0.0.1", "8009"),
            Origin::Referral,
            OptsRef::Source(0),
        );
        for (slot, explicit) in [(line, false), (referral, true)] {
            let out = with_ctx_sources(&k, true, &list, &report, &[source(explicit)], |ctx| {
                run(ctx, &slot)
            });
            assert!(out.ok && out.dc.is_none(), "{out:?}");
            assert!(k.controllers().is_empty(), "{:?}", k.controllers());
            assert!(report.take().error_text().starts_with("excluded"));
        }
        // Named on our command line: an explicit order.
        let out = with_ctx_sources(&k, true, &list, &report, &[source(true)], |ctx| {
            run(ctx, &line)
        });
        assert!(out.dc.is_some(), "{out:?}");
        // What its log enumerates is still checked: the subsystem's entry is at the excluded
        // address too.
        assert_eq!(io_count(&k, SUB), 0);
    }

    #[test]
    fn a_subsystem_listed_twice_is_connected_once_from_what_was_written() {
        // The record of a new controller is built from the option string, not read back: the
        // second entry must find it with the host address and interface the log inherits.
        let k = kernel_with(vec![port("10.0.0.1", "8009", &[SUB, SUB])]);
        let via =
            TransportAddr::new(Transport::Tcp, "10.0.0.1", "8009", "10.0.0.100", "eth1").unwrap();
        let slot = Slot::new(via, Origin::Config, OptsRef::Global);
        let report = RefCell::default();
        let none = ExclusionList::default();
        let out = with_ctx_reporting(&k, false, &none, &report, |ctx| run(ctx, &slot));
        assert!(out.ok, "{out:?}");
        let st = k.state.borrow();
        assert_eq!(
            (st.connects, st.duplicate_io_connects),
            (2, 0),
            "{:?}",
            st.written
        );
        let r = report.take();
        assert_eq!(r.connected.len(), 1, "{r:?}");
        let io = st.ctrls.values().find(|c| c.ctrl.subsysnqn == SUB).unwrap();
        assert_eq!(
            (r.connected[0].ino, r.connected[0].name.as_str()),
            (io.ctrl.ino, io.ctrl.name.as_str()),
            "the identity is the kernel's"
        );
    }

    #[test]
    fn temporary_controller_connects_and_goes_and_a_rerun_connects_nothing_twice() {
        let k = kernel_with(vec![port("10.0.0.1", "8009", &[SUB])]);
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let out = with_ctx(&k, false, |ctx| run(ctx, &slot));
        assert!(out.ok && out.dc.is_none(), "{out:?}");
        assert_eq!(k.controllers().len(), 1, "only the I/O controller is left");
        let out = with_ctx(&k, false, |ctx| run(ctx, &slot));
        assert!(out.ok);
        assert_eq!(io_count(&k, SUB), 1);
        assert!(k.state.borrow().foreign_deleted.is_empty());
    }

    #[test]
    fn our_controller_survives_a_cntlid_change_and_a_reused_number_is_not_ours() {
        let k = kernel_with(vec![port("10.0.0.1", "8009", &[SUB])]);
        let mut slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let out = with_ctx(&k, true, |ctx| run(ctx, &slot));
        let dc = out.dc.unwrap();
        assert_eq!(dc.owner, Owner::Ours);
        slot.dc = Some(dc);
        // A reset: another cntlid, same controller. Still ours, nothing new created.
        k.state.borrow_mut().reset(dc.instance);
        let out = with_ctx(&k, true, |ctx| run(ctx, &slot));
        let after = out.dc.unwrap();
        assert_eq!((after.owner, after.ino), (Owner::Ours, dc.ino));
        assert_ne!(after.cntlid, dc.cntlid);
        assert_eq!(k.controllers().len(), 2);
        // Ours is removed and somebody else's discovery controller at the same address gets the
        // number: used as foreign, never deleted, and ours recreated nowhere (theirs serves).
        let mut st = k.state.borrow_mut();
        st.remove(dc.instance);
        let n = st.add(
            (Transport::Tcp, "10.0.0.1", "8009"),
            DISCOVERY_NQN,
            HOST,
            true,
            false,
        );
        assert_eq!(n, dc.instance, "the fake reuses numbers as the kernel does");
        drop(st);
        let out = with_ctx(&k, false, |ctx| run(ctx, &slot));
        assert_eq!(out.dc.unwrap().owner, Owner::Foreign);
        assert!(k.state.borrow().foreign_deleted.is_empty());
        // And a delete of "ours" by number refuses to touch it.
        assert!(delete_if_ours(&k, &dc, &slot.addr));
        assert!(k.controller(&format!("nvme{n}")).is_ok());
        assert!(k.state.borrow().foreign_deleted.is_empty());
    }

    #[test]
    fn entries_of_another_transport_and_failing_entries() {
        let mut p = port("10.0.0.1", "8009", &[SUB, "nqn.2024-01.io.example:down"]);
        p.refused.push("nqn.2024-01.io.example:down".into());
        p.referrals
            .push((Transport::Loop, "1".into(), "".into(), DISCOVERY_NQN.into()));
        p.referrals.push((
            Transport::Tcp,
            "10.0.0.2".into(),
            "8009".into(),
            "nqn.2024-01.io.example:unique-dc".into(),
        ));
        let k = kernel_with(vec![p, FakePort::new(Transport::Loop, "", "")]);
        let via =
            TransportAddr::new(Transport::Tcp, "10.0.0.1", "8009", "10.0.0.100", "eth1").unwrap();
        let slot = Slot::new(via, Origin::Config, OptsRef::Global);
        let out = with_ctx(&k, false, |ctx| run(ctx, &slot));
        assert!(out.ok, "one failing entry does not fail the log");
        assert_eq!(out.failed_entries.len(), 1);
        assert_eq!(
            out.failed_entries[0].subnqn.as_str(),
            "nqn.2024-01.io.example:down"
        );
        assert_eq!(io_count(&k, SUB), 1);
        // The loop referral carries no TCP host_traddr/host_iface; the TCP one does, and keeps
        // its unique NQN.
        let lp = out
            .referrals
            .iter()
            .find(|r| r.addr.transport == Transport::Loop)
            .unwrap();
        assert!(lp.addr.host_traddr.is_empty() && lp.addr.host_iface.is_empty());
        let uq = out
            .referrals
            .iter()
            .find(|r| r.addr.transport == Transport::Tcp)
            .unwrap();
        assert_eq!(uq.addr.host_iface.as_str(), "eth1");
        assert_eq!(uq.dc_nqn.as_str(), "nqn.2024-01.io.example:unique-dc");
        assert!(!uq.persistent_ok);
    }

    #[test]
    fn an_nvm_entry_of_another_transport_or_naming_the_discovery_nqn_is_not_connected() {
        let k = kernel_with(vec![port("10.0.0.1", "8009", &[DISCOVERY_NQN])]);
        let slot = Slot::new(tcp("10.0.0.1", "8009"), Origin::Config, OptsRef::Global);
        let out = with_ctx(&k, false, |ctx| run(ctx, &slot));
        assert!(out.ok && out.failed_entries.is_empty());
        assert_eq!(
            k.state.borrow().connects,
            1,
            "only the discovery controller"
        );
        let e = entry(SubType::NvmSubsystem, 0, SUB, "1", "");
        let mut e = e;
        e.transport = Transport::Loop;
        let k = kernel_with(vec![]);
        let mut outcome = Outcome {
            ok: true,
            dc: None,
            referrals: vec![],
            failed_entries: vec![],
            skipped_entries: vec![],
            addr_gone: false,
            auth_failed_entries: vec![],
            auth_failed: false,
            refused: false,
        };
        with_ctx(&k, false, |ctx| {
            handle_entries(
                ctx,
                &slot,
                &[Ok(e)].into_iter().collect(),
                &SupportedTokens::builtin(),
                &ConnectOpts::default(),
                &mut outcome,
            )
        });
        assert_eq!(k.state.borrow().connects, 0);
    }

    #[test]
    fn a_unique_discovery_nqn_is_connected_with_the_discovery_token() {
        let k = kernel_with(vec![port("10.0.0.2", "8009", &[SUB])]);
        let mut slot = Slot::new(tcp("10.0.0.2", "8009"), Origin::Referral, OptsRef::Global);
        slot.dc_nqn = Nqn::new("nqn.2024-01.io.example:unique-dc").unwrap();
        let out = with_ctx(&k, true, |ctx| run(ctx, &slot));
        let dc = out.dc.unwrap();
        let c = k.controller(&format!("nvme{}", dc.instance)).unwrap();
        assert_eq!(c.subsysnqn, "nqn.2024-01.io.example:unique-dc");
        assert_eq!(c.cntrltype, "discovery");
    }

    #[test]
    fn an_fc_port_pair_the_kernel_does_not_know_is_reported_gone() {
        let k = kernel_with(vec![]);
        let fc = TransportAddr::new(
            Transport::Fc,
            "nn-0x10001100ab000001:pn-0x20001100ab000001",
            "",
            "nn-0x10001100aa000001:pn-0x20001100aa000001",
            "",
        )
        .unwrap();
        let slot = Slot::new(fc, Origin::FcEvent, OptsRef::Global);
        let out = with_ctx(&k, false, |ctx| run(ctx, &slot));
        assert!(!out.ok && out.addr_gone);
    }
}
