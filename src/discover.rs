//! One discovery run for one table slot: the I/O half of what the engine decides.
//!
//! Find or create the discovery controller, read its log consistently, connect every NVM subsystem
//! that is not connected yet (with `--autoconnect`), hand referrals back to the engine (they are
//! visited from the main loop, never by recursion), and delete a temporary discovery controller.
//! Each hostile or failing entry is logged and skipped; the others still proceed.

use crate::addr::{Nqn, Transport, TransportAddr};
use crate::config::DiscoverySource;
use crate::discovery_log::{self, ControllerLog, DiscoveryEntry, SubType};
use crate::engine::{Outcome, Referral};
use crate::error::Result;
use crate::fabrics::{
    self, ConnectOutcome, ConnectParams, CtrlKind, DISCOVERY_NQN, Fabrics, SupportedTokens,
};
use crate::opts::ConnectOpts;
use crate::sysfs::{self, Controller, CtrlState, Sysfs};
use crate::table::{DiscoveryCtrl, OptsRef, Owner, Slot};

/// How often the log is re-read when its generation counter keeps changing.
const LOG_READ_TRIES: u32 = 5;

/// Everything a discovery run needs that does not change between runs.
pub struct Context<'a> {
    pub fabrics: &'a Fabrics,
    pub sysfs: &'a Sysfs,
    pub dev_root: &'a std::path::Path,
    pub hostnqn: &'a str,
    pub hostid: Option<&'a str>,
    pub global_opts: &'a ConnectOpts,
    pub sources: &'a [DiscoverySource],
    pub autoconnect: bool,
    pub persistent: bool,
    pub dry_run: bool,
    /// Called as soon as we created a discovery controller (the state file must know it at once).
    pub on_created: &'a dyn Fn(&DiscoveryCtrl),
    /// SIGTERM or SIGINT arrived: stop connecting (each connect may block for a kernel timeout).
    pub stop_requested: &'a dyn Fn() -> bool,
}

impl Context<'_> {
    /// Connection options for a slot: its discovery.conf line over the command line's.
    fn opts_for(&self, r: OptsRef) -> ConnectOpts {
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
    };
    if !ctx.fabrics.exists() {
        warn!(
            "cannot discover {}: /dev/nvme-fabrics is absent (nvme-fabrics module not loaded)",
            slot.addr
        );
        outcome.ok = false;
        return outcome;
    }
    let tokens = match ctx.fabrics.supported_tokens() {
        Ok(t) => t,
        Err(e) => {
            error!("{e}");
            outcome.ok = false;
            return outcome;
        }
    };
    let opts = ctx.opts_for(slot.opts);
    let dc = match discovery_controller(ctx, slot, &tokens, &opts) {
        Ok(Some(dc)) => dc,
        Ok(None) => return outcome, // dry run without a controller to read
        Err(e) => {
            error!("discovery at {}: {e}", slot.addr);
            // Keep the controller we had: one that is reconnecting is still ours (the state file
            // must keep it), and one that is gone is cleared by its remove event.
            outcome.ok = false;
            return outcome;
        }
    };
    outcome.dc = Some(dc);
    match read_log(ctx, dc.instance) {
        Ok(entries) => {
            outcome.ok =
                handle_entries(ctx, slot, &entries, &tokens, &opts, &mut outcome.referrals);
        }
        Err(e) => {
            error!("discovery at {} (nvme{}): {e}", slot.addr, dc.instance);
            outcome.ok = false;
        }
    }
    if !keeps_dc(ctx, slot) && dc.owner == Owner::Ours {
        // A temporary discovery controller: gone once its log is read, as `nvme connect-all` does.
        match ctx.sysfs.delete_controller(&format!("nvme{}", dc.instance)) {
            Ok(()) => outcome.dc = None,
            Err(e) => error!("{e}"),
        }
    }
    outcome
}

/// Does this slot keep a persistent discovery controller (`--persistent`, and not a referral that
/// cannot be kept)?
fn keeps_dc(ctx: &Context, slot: &Slot) -> bool {
    ctx.persistent && !slot.temporary
}

/// Is `c` still the discovery controller `dc` we recorded for `addr`? The kernel reuses a freed
/// instance number for the next controller, so a bare `nvmeN` proves nothing: before we read its
/// log, adopt it or delete it, it must be a discovery controller at the same address, not going
/// away, and, if it is ours, with the same cntlid and subsystem NQN.
pub fn same_dc(
    c: &Controller,
    dc: &DiscoveryCtrl,
    addr: &TransportAddr,
) -> std::result::Result<(), String> {
    if !c.is_discovery() {
        return Err(format!("{} is not a discovery controller now", c.name));
    }
    if c.state.is_going_away() {
        return Err(format!("{} is {}", c.name, c.state.name()));
    }
    let hostnqn = if addr.hostnqn.is_empty() {
        c.hostnqn.as_str()
    } else {
        addr.hostnqn.as_str()
    };
    if !sysfs::matches(c, addr, &c.subsysnqn, hostnqn) {
        return Err(format!("{} is now a controller at another address", c.name));
    }
    if dc.owner.is_ours() {
        if c.cntlid != Some(dc.cntlid) {
            let now = c.cntlid.map_or("unknown".to_owned(), |n| n.to_string());
            return Err(format!(
                "{} has cntlid {now}, we recorded {}",
                c.name, dc.cntlid
            ));
        }
        if !dc.subsysnqn.is_empty() && c.subsysnqn != dc.subsysnqn.as_str() {
            return Err(format!(
                "{} has subsysnqn {}, we recorded {}",
                c.name, c.subsysnqn, dc.subsysnqn
            ));
        }
    }
    Ok(())
}

fn reconnecting(c: &Controller) -> crate::error::Error {
    // The kernel is reconnecting it and says `rediscover` when it is back; a second controller to
    // the same address now would be a duplicate later.
    crate::error::Error::invalid(
        format!("read the discovery log of {}", c.name),
        format!(
            "it is {}, not live (the kernel is reconnecting it)",
            c.state.name()
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
    if let Some(dc) = slot.dc {
        match ctx.sysfs.controller(&format!("nvme{}", dc.instance)) {
            Ok(c) => match same_dc(&c, &dc, &slot.addr) {
                Ok(()) if c.state == CtrlState::Live => return Ok(Some(dc_of(&c, dc.owner))),
                Ok(()) => return Err(reconnecting(&c)),
                Err(why) => debug!("not using nvme{} for {}: {why}", dc.instance, slot.addr),
            },
            Err(e) => debug!("{e}"),
        }
    }
    let hostnqn = effective_hostnqn(ctx, &slot.addr, opts);
    let ctrls = ctx.sysfs.controllers();
    let existing = ctrls.iter().find(|c| {
        c.is_discovery()
            && !c.state.is_going_away()
            && sysfs::matches(c, &slot.addr, &c.subsysnqn, hostnqn)
    });
    if let Some(c) = existing {
        if c.state != CtrlState::Live {
            return Err(reconnecting(c));
        }
        debug!(
            "using existing discovery controller {} (foreign) for {}",
            c.name, slot.addr
        );
        return Ok(Some(dc_of(c, Owner::Foreign)));
    }
    if ctx.dry_run {
        info!(
            "dry run: would create a discovery controller at {}",
            slot.addr
        );
        return Ok(None);
    }
    let params = ConnectParams {
        subsysnqn: DISCOVERY_NQN,
        addr: &slot.addr,
        opts,
        kind: CtrlKind::Discovery {
            persistent: keeps_dc(ctx, slot),
        },
    };
    let options = fabrics::build_options(&params, tokens, ctx.hostnqn, ctx.hostid)?;
    match ctx.fabrics.connect(&options)? {
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
            // Record what sysfs shows: a target may give its discovery subsystem a unique NQN,
            // and the next instance compares the state file with sysfs.
            let dc = match ctx.sysfs.controller(&format!("nvme{instance}")) {
                Ok(c) => dc_of(&c, Owner::Ours),
                Err(e) => {
                    debug!("{e}");
                    DiscoveryCtrl {
                        instance,
                        owner: Owner::Ours,
                        cntlid,
                        subsysnqn: Nqn::new(DISCOVERY_NQN).unwrap_or_default(),
                    }
                }
            };
            (ctx.on_created)(&dc);
            Ok(Some(dc))
        }
        ConnectOutcome::AlreadyConnected => {
            // Raced with somebody else's connect: use theirs.
            let ctrls = ctx.sysfs.controllers();
            match ctrls
                .iter()
                .find(|c| c.is_discovery() && sysfs::matches(c, &slot.addr, &c.subsysnqn, hostnqn))
            {
                Some(c) => Ok(Some(dc_of(c, Owner::Foreign))),
                None => Err(crate::error::Error::invalid(
                    format!("connect discovery controller at {}", slot.addr),
                    "kernel says already connected, but no such controller is in sysfs",
                )),
            }
        }
    }
}

fn dc_of(c: &Controller, owner: Owner) -> DiscoveryCtrl {
    DiscoveryCtrl {
        instance: c.instance,
        owner,
        cntlid: c.cntlid.unwrap_or(0),
        subsysnqn: Nqn::new(&c.subsysnqn).unwrap_or_default(),
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

fn read_log(
    ctx: &Context,
    instance: u32,
) -> Result<Vec<std::result::Result<DiscoveryEntry, discovery_log::EntryError>>> {
    let mut src = ControllerLog::open(ctx.dev_root, &format!("nvme{instance}"))?;
    let log = discovery_log::read_discovery_log(&mut src, LOG_READ_TRIES)?;
    debug!(
        "nvme{}: discovery log genctr {} with {} entries",
        instance,
        log.genctr,
        log.entries.len()
    );
    Ok(log.entries)
}

/// Connect subsystems and collect referrals. False if something should be retried.
fn handle_entries(
    ctx: &Context,
    slot: &Slot,
    entries: &[std::result::Result<DiscoveryEntry, discovery_log::EntryError>],
    tokens: &SupportedTokens,
    opts: &ConnectOpts,
    referrals: &mut Vec<Referral>,
) -> bool {
    let mut all_ok = true;
    let mut ctrls: Option<Vec<Controller>> = None;
    for (i, entry) in entries.iter().enumerate() {
        if (ctx.stop_requested)() {
            info!(
                "stopping the discovery at {}: {} log entries left",
                slot.addr,
                entries.len() - i
            );
            return false;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warn!("discovery log of {}: refused {}", slot.addr, e);
                continue;
            }
        };
        let addr = entry_addr(entry, &slot.addr);
        match entry.subtype {
            SubType::NvmSubsystem => {
                if !ctx.autoconnect {
                    info!(
                        "found {} at {} (not connecting: no --autoconnect)",
                        entry.subnqn, addr
                    );
                    continue;
                }
                let ctrls = ctrls.get_or_insert_with(|| ctx.sysfs.controllers());
                if !connect_subsystem(ctx, entry, &addr, tokens, opts, ctrls) {
                    all_ok = false;
                }
            }
            SubType::Referral | SubType::CurrentDiscovery => {
                if let Some(r) = referral(entry, addr, &slot.addr) {
                    referrals.push(r);
                }
            }
            SubType::Unknown(t) => {
                debug!("discovery log entry with unknown subtype {t} at {addr}: ignored")
            }
        }
    }
    all_ok
}

/// Another discovery controller to visit, as nvme-cli decides it: not when the entry says it returns
/// the same information (DUPRETINFO), not the controller we are reading (a loop port has no address
/// of its own, so any loop entry is this one); kept persistent only if it answers to the well-known
/// discovery NQN or supports explicit persistent connections (EPCSD).
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
    let persistent_ok =
        entry.subnqn.as_str() == DISCOVERY_NQN || entry.explicit_persistent_connection();
    Some(Referral {
        addr,
        persistent_ok,
    })
}

/// The I/O controller address of an entry: its transport address, reached from the same host port
/// as the discovery controller (nvme-cli passes host_traddr and host_iface on).
fn entry_addr(entry: &DiscoveryEntry, via: &TransportAddr) -> TransportAddr {
    let mut addr = entry.to_addr();
    addr.host_traddr = via.host_traddr;
    addr.host_iface = via.host_iface;
    addr.hostnqn = via.hostnqn;
    addr
}

fn connect_subsystem(
    ctx: &Context,
    entry: &DiscoveryEntry,
    addr: &TransportAddr,
    tokens: &SupportedTokens,
    opts: &ConnectOpts,
    ctrls: &mut Vec<Controller>,
) -> bool {
    let subnqn = entry.subnqn.as_str();
    let hostnqn = effective_hostnqn(ctx, addr, opts);
    if !opts.duplicate_connect {
        if let Some(c) = sysfs::find(ctrls, addr, subnqn, hostnqn) {
            debug!("{} at {} is already connected as {}", subnqn, addr, c.name);
            return true;
        }
    }
    if ctx.dry_run {
        info!("dry run: would connect {} at {}", subnqn, addr);
        return true;
    }
    let params = ConnectParams {
        subsysnqn: subnqn,
        addr,
        opts,
        kind: CtrlKind::Io,
    };
    let result = fabrics::build_options(&params, tokens, ctx.hostnqn, ctx.hostid)
        .and_then(|o| ctx.fabrics.connect(&o));
    match result {
        Ok(ConnectOutcome::Connected { instance, .. }) => {
            info!("connected {} at {} as nvme{}", subnqn, addr, instance);
            // Later entries for the same subsystem and address must see it.
            if let Ok(c) = ctx.sysfs.controller(&format!("nvme{instance}")) {
                ctrls.push(c);
            }
            true
        }
        Ok(ConnectOutcome::AlreadyConnected) => {
            debug!("{} at {} is already connected", subnqn, addr);
            true
        }
        Err(e) => {
            error!("{e}");
            // A refused value or option string will not get better by retrying; target-side errors may.
            use rustix::io::Errno;
            matches!(e.errno(), None | Some(Errno::INVAL) | Some(Errno::NODEV))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::FixedStr;

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

    fn ctrl(cntrltype: &str, state: CtrlState, cntlid: u16, traddr: &str) -> Controller {
        Controller {
            name: "nvme3".into(),
            instance: 3,
            transport: Transport::Tcp,
            traddr: traddr.into(),
            trsvcid: "8009".into(),
            host_traddr: String::new(),
            host_iface: String::new(),
            src_addr: "10.0.0.100".into(),
            subsysnqn: DISCOVERY_NQN.into(),
            state,
            cntrltype: cntrltype.into(),
            dctype: String::new(),
            hostnqn: "nqn.2014-08.org.nvmexpress:uuid:1".into(),
            hostid: String::new(),
            cntlid: Some(cntlid),
        }
    }

    #[test]
    fn same_dc_refuses_a_reused_instance_number() {
        let addr = TransportAddr::new(Transport::Tcp, "10.0.0.1", "8009", "", "").unwrap();
        let ours = DiscoveryCtrl {
            instance: 3,
            owner: Owner::Ours,
            cntlid: 1,
            subsysnqn: Nqn::new(DISCOVERY_NQN).unwrap(),
        };
        assert_eq!(
            same_dc(
                &ctrl("discovery", CtrlState::Live, 1, "10.0.0.1"),
                &ours,
                &addr
            ),
            Ok(())
        );
        assert_eq!(
            same_dc(
                &ctrl("discovery", CtrlState::Connecting, 1, "10.0.0.1"),
                &ours,
                &addr
            ),
            Ok(())
        );
        // The number now belongs to somebody else's discovery controller, or to an I/O controller.
        assert!(
            same_dc(
                &ctrl("discovery", CtrlState::Live, 2, "10.0.0.1"),
                &ours,
                &addr
            )
            .is_err()
        );
        let mut io = ctrl("io", CtrlState::Live, 1, "10.0.0.1");
        io.subsysnqn = "nqn.2024-01.io.example:disk".into();
        assert!(same_dc(&io, &ours, &addr).is_err());
        assert!(
            same_dc(
                &ctrl("discovery", CtrlState::Live, 1, "10.0.0.2"),
                &ours,
                &addr
            )
            .is_err()
        );
        assert!(
            same_dc(
                &ctrl("discovery", CtrlState::Deleting, 1, "10.0.0.1"),
                &ours,
                &addr
            )
            .is_err()
        );
        // Somebody else's controller learned from an event: no cntlid recorded, only its identity.
        let foreign = DiscoveryCtrl {
            instance: 3,
            owner: Owner::Foreign,
            cntlid: 0,
            subsysnqn: Nqn::EMPTY,
        };
        assert_eq!(
            same_dc(
                &ctrl("discovery", CtrlState::Live, 7, "10.0.0.1"),
                &foreign,
                &addr
            ),
            Ok(())
        );
    }
}
