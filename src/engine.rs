//! The decision engine: events in, actions out, no I/O.
//!
//! The shell feeds it classified kernel events, discovery results, signals and the current time; the
//! engine updates the connection table and says what to do next. Because it performs no I/O, every
//! decision (coalescing, retry, adoption, teardown, referrals) is tested here with event sequences.
//!
//! Coalescing: an event for an address only sets the slot's `pending` flag. The shell asks for work
//! with [`Engine::next_work`] after draining the uevent socket, so any number of events that arrived
//! for one address while its discovery ran become exactly one re-run.

use crate::addr::{Nqn, TransportAddr};
use crate::ownership::{self, Removal};
use crate::table::{
    DiscoveryCtrl, Millis, OptsRef, Origin, Owner, Slot, SlotId, SlotState, Table, referrer_bit,
};

/// How many failing log entries are retried on their own backoff at once (fixed: no heap growth).
pub const ENTRY_RETRY_CAPACITY: usize = 64;

/// Fixed settings from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Keep discovery controllers up and react to their AENs (`--persistent`).
    pub persistent: bool,
    /// Leave our discovery controllers up at exit (`--keep`).
    pub keep: bool,
    /// First retry delay after a failed discovery.
    pub retry_base: Millis,
    /// Longest retry delay.
    pub retry_cap: Millis,
    /// The retry delay after an authentication failure (DH-HMAC-CHAP: a rejected key). Longer
    /// than the cap: a key does not get right by retrying, and a target that drops the connection
    /// on a wrong key (nvmet does) holds our connect for the kernel's admin timeout (60 s by default), in
    /// which this single-threaded daemon serves nothing else. SIGHUP retries at once.
    pub auth_retry: Millis,
    /// How long an address nothing asks for any more (a referral no log names, an FC port that
    /// is gone) is kept before it is released.
    pub prune_grace: Millis,
    /// With `persistent`: how often the log of a discovery controller that cannot be kept (a
    /// unique discovery NQN without EPCSD: it sends no AENs) is read again
    /// (`--epcsd-poll-interval`, as nvme-discoverd does). 0: never.
    pub epcsd_poll: Millis,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            persistent: false,
            keep: false,
            retry_base: 1_000,
            retry_cap: 60_000,
            auth_retry: 600_000,
            prune_grace: 300_000,
            epcsd_poll: 15 * 60_000,
        }
    }
}

/// What the shell learned and hands to the engine.
// Inputs are short-lived stack values; boxing the address would allocate per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An address to discover from configuration (discovery.conf, command line, kernel command line).
    Configured { addr: TransportAddr, opts: OptsRef },
    /// An NVM subsystem the configuration names directly (nvme-fabrics.conf `[Subsystem]`): kept
    /// connected without discovery (see [`crate::table::Slot::subsystem`]).
    ConfiguredSubsystem {
        addr: TransportAddr,
        subsystem: Nqn,
        opts: OptsRef,
    },
    /// A path from the firmware's boot table (NBFT), given once its network is ready: a
    /// discovery controller's address (`subsystem` empty) or an NVM subsystem to connect directly.
    /// Stronger than configuration: never released, never pruned, left up at exit.
    Nbft {
        addr: TransportAddr,
        subsystem: Nqn,
        opts: OptsRef,
    },
    /// The network a path may wait on moved: `host_iface` came up or got an address, or
    /// `host_traddr` became usable (a non-tentative address). Slots that connect through it and
    /// wait out a backoff run now, so a late interface is not left to the retry timer.
    NetworkReady {
        host_iface: crate::addr::FixedStr<{ crate::addr::HOST_IFACE_MAX }>,
        host_traddr: Option<std::net::IpAddr>,
    },
    /// A discovery controller that exists already (startup scan, rescan, or the handoff file).
    Existing {
        addr: TransportAddr,
        dc: DiscoveryCtrl,
        origin: Origin,
    },
    /// Discovery log change AEN or `NVME_EVENT=rediscover` from /dev/nvme`instance`, whose identity
    /// the shell read right away (`ino`, 0 if it could not).
    LogChanged {
        instance: u32,
        ino: u64,
        addr: TransportAddr,
    },
    /// A discovery controller became live (`NVME_EVENT=connected`, checked in sysfs by the shell).
    DcLive {
        instance: u32,
        ino: u64,
        addr: TransportAddr,
    },
    /// FC `nvmediscovery`: a remote port with discovery service appeared.
    FcDiscovery { addr: TransportAddr },
    /// A `remove` uevent for /dev/nvme`instance`; `current` is the identity sysfs shows under that
    /// name now (`None`: no such controller), which tells a late event from the loss of ours.
    CtrlRemoved { instance: u32, current: Option<u64> },
    /// Events were lost (ENOBUFS on the uevent socket), or /dev/nvme-fabrics appeared: re-run
    /// discovery everywhere now, waiting retries included.
    Rescan,
    /// The configuration is about to be re-read (SIGHUP): forget which addresses it named and which
    /// line's options they use; the `Configured` inputs that follow name them again.
    ConfigReloading,
    /// Every `Configured` input of the reload has been given: addresses no line names any more are
    /// released (our discovery controller there deleted).
    ConfigReloaded,
    /// SIGTERM or SIGINT.
    Terminate,
}

/// The inputs that hand the configured sources to the engine, each with its own options
/// (`OptsRef::Source(i)`). `[Subsystem]` paths come first: a discovery log that names the same
/// subsystem must find it connected with the section's own options, not connect it with the
/// log's. A line naming our own host NQN is the default host (adoption normalises alike).
pub fn configured_inputs<'a>(
    sources: &'a [crate::config::DiscoverySource],
    our_hostnqn: &'a str,
) -> impl Iterator<Item = Input> + 'a {
    let direct = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.subsystem.is_empty());
    let discovery = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.subsystem.is_empty());
    direct.chain(discovery).map(move |(i, src)| {
        let opts = OptsRef::Source(i as u16);
        let addr = src.addr.with_default_host(our_hostnqn);
        if src.subsystem.is_empty() {
            Input::Configured { addr, opts }
        } else {
            Input::ConfiguredSubsystem {
                addr,
                subsystem: src.subsystem,
                opts,
            }
        }
    })
}

/// The result of one discovery run, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The log was read and every entry handled (an entry refused as hostile does not make it fail).
    pub ok: bool,
    /// The discovery controller serving the slot afterwards (`None`: none is up, e.g. temporary and deleted).
    pub dc: Option<DiscoveryCtrl>,
    /// Other discovery controllers to visit from the main loop, never by recursion.
    pub referrals: Vec<Referral>,
    /// Log entries whose connect failed on the target's side: each is retried on its own backoff.
    pub failed_entries: Vec<EntryKey>,
    /// Log entries not tried because their own backoff is still running (still listed).
    pub skipped_entries: Vec<EntryKey>,
    /// The transport says the address does not exist (FC: no such port pair).
    pub addr_gone: bool,
    /// Of `failed_entries`, those the target refused authentication (DH-HMAC-CHAP: a wrong key,
    /// or none where one is required): retried on the longest backoff, said once.
    pub auth_failed_entries: Vec<EntryKey>,
    /// The slot's own connect (its discovery controller, or its direct subsystem) was refused
    /// authentication.
    pub auth_failed: bool,
    /// The slot's own connect was refused by us before any write (a token this kernel lacks, a
    /// value it would refuse): the slot is marked, so the retries do not say it again.
    pub refused: bool,
}

/// One NVM subsystem at one transport address, as a log entry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryKey {
    pub addr: TransportAddr,
    pub subnqn: Nqn,
    /// What the entry's TREQ/TSAS ask of the channel, kept so a retry decides TLS as the first
    /// try did.
    pub ask: crate::tls::ChannelAsk,
}

/// A failing entry waiting for its own retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRetry {
    /// The slot whose log named it (its options apply).
    pub slot: SlotId,
    pub key: EntryKey,
    pub failures: u32,
    pub at: Millis,
    /// Its last failure was an authentication failure.
    pub auth: bool,
}

/// How an entry retry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryResult {
    /// Connected.
    Done,
    /// Nothing left to retry: refused for good (a bad value, TLS it cannot have) or excluded.
    Dropped,
    Failed,
    AuthFailed,
}

/// Failures counted for an entry's authentication failure (its `auth` flag marks the state).
const AUTH_FAILURES: u32 = 32;

/// Said when an entry or slot starts failing authentication (not again on every retry).
fn say_auth_failed(what: std::fmt::Arguments, every: Millis) {
    error!(
        "{what}: authentication failed (DH-HMAC-CHAP: the target rejected the key, or wants one and none is configured): tried again every {} min; fix the key and send SIGHUP",
        every / 60_000
    );
}

/// Index into the entry retry list, valid until the next call that changes the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRetryId(pub usize);

/// A discovery controller a log pointed to (a referral, or another port of the current discovery
/// subsystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referral {
    pub addr: TransportAddr,
    /// May be kept as a persistent discovery controller: it answers to the well-known discovery NQN
    /// or says it supports explicit persistent connections (EPCSD), as nvme-cli decides it.
    pub persistent_ok: bool,
    /// The unique discovery NQN the entry names (empty: the well-known one).
    pub dc_nqn: Nqn,
    /// Its entry asks for TLS and TLS is configured: reach it with `tls` ([`crate::tls::choose`]).
    pub tls: bool,
}

/// What the shell must do.
// Pushed into a Vec the shell reuses; boxing the address would allocate per action.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delete our discovery controller `dc` at `addr` (at exit, or when its address is released).
    /// The shell checks first that the device is still that controller: instance numbers are reused.
    DeleteDc {
        dc: DiscoveryCtrl,
        addr: TransportAddr,
    },
    /// The set of discovery controllers we own changed: rewrite the handoff state file.
    StateChanged,
    /// Leave the loop.
    Exit,
}

#[derive(Clone)]
pub struct Engine {
    pub cfg: EngineConfig,
    table: Table,
    /// [`ENTRY_RETRY_CAPACITY`] places, allocated once (on the heap for the reason of
    /// [`Table`]'s slots).
    entry_retries: Box<[Option<EntryRetry>]>,
    seq: u64,
    /// The latest time any call brought (for decisions a call makes without a `now` of its own).
    last_now: Millis,
    terminating: bool,
    exited: bool,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            table: Table::default(),
            entry_retries: vec![None; ENTRY_RETRY_CAPACITY].into_boxed_slice(),
            seq: 0,
            last_now: 0,
            terminating: false,
            exited: false,
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    pub fn slot(&self, id: SlotId) -> Option<&Slot> {
        self.table.get(id)
    }

    pub fn is_terminating(&self) -> bool {
        self.terminating
    }

    /// The failing entries waiting for their own retry.
    pub fn entry_retries(&self) -> impl Iterator<Item = &EntryRetry> {
        self.entry_retries.iter().flatten()
    }

    /// Slot `id`'s failing entries whose own backoff still runs at `now`: a discovery run of the
    /// slot leaves them alone (an AEN storm must not retry a black-holed port on every run).
    pub fn entries_waiting(&self, id: SlotId, now: Millis) -> Vec<EntryKey> {
        self.entry_retries()
            .filter(|r| r.slot == id && r.at > now)
            .map(|r| r.key)
            .collect()
    }

    /// Queue a discovery run for the slot (coalesces with one already queued).
    fn mark_pending(&mut self, id: SlotId) {
        if self.terminating {
            return;
        }
        if let Some(s) = self.table.get_mut(id) {
            if !s.pending {
                self.seq += 1;
                s.pending = true;
                s.queued_seq = self.seq;
            }
        }
    }

    /// A new reason to discover: a slot waiting out its backoff runs now (its failure count stays,
    /// so if it fails again the backoff goes on growing). Any number of reasons give one run.
    fn wake(&mut self, id: SlotId) {
        if let Some(s) = self.table.get_mut(id) {
            if let SlotState::WaitRetry { .. } = s.state {
                debug!(
                    "{}: a new reason to discover cuts its backoff short",
                    s.addr
                );
                s.state = SlotState::Idle;
            }
        }
        self.mark_pending(id);
    }

    /// Find the slot for `addr` or make one. A full table is logged and refused, except that a
    /// configured address takes the place of one nobody configured (referrals can never push
    /// configuration out).
    fn slot_for(
        &mut self,
        addr: &TransportAddr,
        origin: Origin,
        opts: OptsRef,
        out: &mut Vec<Action>,
    ) -> Option<SlotId> {
        if let Some(id) = self.table.find(addr) {
            return Some(id);
        }
        self.insert_slot(Slot::new(*addr, origin, opts), out)
    }

    /// Put a new slot into the table (see [`Engine::slot_for`] for a full one).
    fn insert_slot(&mut self, mut slot: Slot, out: &mut Vec<Action>) -> Option<SlotId> {
        let origin = slot.origin;
        slot.queued_seq = self.seq;
        let inserted = match self.table.insert(slot) {
            Ok(id) => Ok(id),
            Err(full) if origin.is_configured() => match self.eviction_victim() {
                Some(victim) => {
                    if let Some(v) = self.table.get(victim) {
                        warn!(
                            "connection table full: releasing {} (from {}) for configured {}",
                            v.addr,
                            v.origin.name(),
                            slot.addr
                        );
                    }
                    self.release(victim, out);
                    self.table.insert(slot).map_err(|_| full)
                }
                None => Err(full),
            },
            Err(full) => Err(full),
        };
        match inserted {
            Ok(id) => {
                debug!("slot {}: {} (from {})", id.0, slot.addr, origin.name());
                Some(id)
            }
            Err(_) => {
                error!(
                    "connection table full ({} slots): not tracking {} (from {}); raise table::CAPACITY",
                    crate::table::CAPACITY,
                    slot.addr,
                    origin.name()
                );
                None
            }
        }
    }

    /// The slot a configured address may take when the table is full: one nobody configured and
    /// no run is using, without a controller of ours first.
    fn eviction_victim(&self) -> Option<SlotId> {
        self.table
            .iter()
            .filter(|(_, s)| !s.origin.is_configured() && s.state != SlotState::Discovering)
            .min_by_key(|(_, s)| {
                (
                    s.dc.is_some_and(|d| d.owner.is_ours()),
                    s.origin == Origin::FcEvent,
                )
            })
            .map(|(id, _)| id)
    }

    /// Forget a slot: our discovery controller there is deleted, its referrals lose a referrer,
    /// its entry retries go.
    fn release(&mut self, id: SlotId, out: &mut Vec<Action>) {
        let Some(s) = self.table.remove(id) else {
            return;
        };
        if let Some(dc) = s.dc.filter(|d| d.owner.is_ours()) {
            out.push(Action::DeleteDc { dc, addr: s.addr });
            out.push(Action::StateChanged);
        }
        for r in self.entry_retries.iter_mut() {
            if r.is_some_and(|r| r.slot == id) {
                *r = None;
            }
        }
        self.drop_referrer(id, None);
    }

    /// `parent` no longer names the slots in its referrer bit (all of them, or those not in
    /// `still`); then the referrals are judged again (see [`Engine::update_orphans`]).
    fn drop_referrer(&mut self, parent: SlotId, still: Option<(&[Referral], Millis)>) {
        let bit = referrer_bit(parent);
        let now = still.map_or(self.last_now, |(_, now)| now);
        for (_, s) in self.table.iter_mut() {
            if s.referrers & bit == 0 {
                continue;
            }
            if let Some((named, _)) = still {
                if named.iter().any(|r| r.addr == s.addr) {
                    continue;
                }
            }
            s.referrers &= !bit;
        }
        self.update_orphans(now);
    }

    /// A referral is kept while a chain of referrers leads to an address somebody asked for
    /// (configured, an FC event, an AEN, the startup scan): ports of one discovery subsystem name
    /// each other, so "some referrer left" would keep a dropped cycle forever. Referrals no chain
    /// reaches are orphaned (released after the grace period); reached again, they are kept.
    fn update_orphans(&mut self, now: Millis) {
        let mut reached: crate::table::Referrers = 0;
        for (id, s) in self.table.iter() {
            if s.origin != Origin::Referral {
                reached |= referrer_bit(id);
            }
        }
        loop {
            let mut grew = false;
            for (id, s) in self.table.iter() {
                let bit = referrer_bit(id);
                if reached & bit == 0 && s.referrers & reached != 0 {
                    reached |= bit;
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        let grace = self.cfg.prune_grace / 1000;
        for (id, s) in self.table.iter_mut() {
            if s.origin != Origin::Referral {
                continue;
            }
            let kept = reached & referrer_bit(id) != 0;
            match (kept, s.orphan_since) {
                (false, None) => {
                    info!(
                        "referral {} is no longer named by any discovery log we were asked for: released in {grace} s unless named again",
                        s.addr
                    );
                    s.orphan_since = Some(now);
                }
                (true, Some(_)) => s.orphan_since = None,
                _ => {}
            }
        }
    }

    /// Slot an event from /dev/nvme`instance` (identity `ino`) at `addr` belongs to: by
    /// controller first, then by address.
    fn slot_of_event(&self, instance: u32, ino: u64, addr: &TransportAddr) -> Option<SlotId> {
        self.table
            .find_dc(instance, ino)
            .or_else(|| self.table.find_any_host(addr))
    }

    /// Feed one input; actions are appended to `out` (reused by the caller: no allocation per event).
    pub fn handle(&mut self, input: Input, now: Millis, out: &mut Vec<Action>) {
        self.last_now = self.last_now.max(now);
        if self.terminating && !matches!(input, Input::CtrlRemoved { .. } | Input::Terminate) {
            // Shutting down: nothing new is tracked, configured or released (a SIGHUP read after
            // SIGTERM must not delete what --keep leaves up); removals still count.
            return;
        }
        match input {
            Input::Configured { addr, opts } => {
                if let Some(id) = self.slot_for(&addr, Origin::Config, opts, out) {
                    if let Some(s) = self.table.get_mut(id) {
                        // Configuration is a strong reason to keep an address; only the
                        // firmware's boot table is stronger.
                        if s.origin != Origin::Nbft {
                            s.origin = Origin::Config;
                        }
                        s.opts = opts;
                        s.unconfirmed = false;
                        s.orphan_since = None;
                        // Asked for by name: a persistent controller to the well-known NQN,
                        // whatever a referral said of the address before.
                        s.temporary = false;
                        s.dc_nqn = Nqn::EMPTY;
                        s.tls = false;
                    }
                    self.wake(id);
                }
            }
            Input::ConfiguredSubsystem {
                addr,
                subsystem,
                opts,
            } => {
                let id = match self.table.find_subsystem(&addr, &subsystem) {
                    Some(id) => Some(id),
                    None => {
                        let mut slot = Slot::new(addr, Origin::Config, opts);
                        slot.subsystem = subsystem;
                        self.insert_slot(slot, out)
                    }
                };
                if let Some(id) = id {
                    if let Some(s) = self.table.get_mut(id) {
                        s.opts = opts;
                        s.unconfirmed = false;
                    }
                    self.wake(id);
                }
            }
            Input::Nbft {
                addr,
                subsystem,
                opts,
            } => {
                let id = if subsystem.is_empty() {
                    self.slot_for(&addr, Origin::Nbft, opts, out)
                } else {
                    match self.table.find_subsystem(&addr, &subsystem) {
                        Some(id) => Some(id),
                        None => {
                            let mut slot = Slot::new(addr, Origin::Nbft, opts);
                            slot.subsystem = subsystem;
                            self.insert_slot(slot, out)
                        }
                    }
                };
                if let Some(id) = id {
                    if let Some(s) = self.table.get_mut(id) {
                        if s.origin != Origin::Nbft && s.dc.is_some_and(|d| d.owner.is_ours()) {
                            // Its controller is now one that must outlive us.
                            out.push(Action::StateChanged);
                        }
                        s.origin = Origin::Nbft;
                        s.opts = opts;
                        s.unconfirmed = false;
                        s.orphan_since = None;
                        if !s.is_direct() {
                            s.temporary = false;
                            s.dc_nqn = Nqn::EMPTY;
                            s.tls = false;
                        }
                    }
                    self.wake(id);
                }
            }
            Input::NetworkReady {
                host_iface,
                host_traddr,
            } => {
                let ids: Vec<SlotId> = self
                    .table
                    .iter()
                    .filter(|(_, s)| {
                        let by_iface = !host_iface.is_empty()
                            && s.addr.host_iface.as_str() == host_iface.as_str();
                        let by_traddr = host_traddr.is_some_and(|ip| {
                            s.addr.host_traddr.as_str().parse::<std::net::IpAddr>() == Ok(ip)
                        });
                        (by_iface || by_traddr) && matches!(s.state, SlotState::WaitRetry { .. })
                    })
                    .map(|(id, _)| id)
                    .collect();
                for id in ids {
                    if let Some(s) = self.table.get(id) {
                        info!(
                            "{}: the network it connects through is ready: running now instead of at the end of its backoff",
                            s.addr
                        );
                    }
                    self.wake(id);
                }
            }
            Input::Existing { addr, dc, origin } => {
                let Some(id) = self.slot_for(&addr, origin, OptsRef::Global, out) else {
                    return;
                };
                if let Some(s) = self.table.get_mut(id) {
                    if s.dc.is_none() {
                        s.dc = Some(dc);
                        if dc.owner.is_ours() {
                            out.push(Action::StateChanged);
                        }
                    }
                }
                if origin == Origin::Referral {
                    // Handed over without its parent: kept only if a log names it again in time.
                    self.update_orphans(now);
                }
                self.mark_pending(id);
            }
            Input::LogChanged {
                instance,
                ino,
                addr,
            }
            | Input::DcLive {
                instance,
                ino,
                addr,
            } => {
                let known = self.table.find_dc(instance, ino).is_some();
                if known && matches!(input, Input::DcLive { .. }) {
                    // Our own connect (or a reconnect, which the kernel follows with `rediscover`).
                    return;
                }
                let id = match self.slot_of_event(instance, ino, &addr) {
                    Some(id) => id,
                    None => match self.slot_for(&addr, Origin::Aen, OptsRef::Global, out) {
                        Some(id) => id,
                        None => return,
                    },
                };
                if let Some(s) = self.table.get_mut(id) {
                    if s.dc.is_none() {
                        // A discovery controller we did not create: use it, never delete it.
                        s.dc = Some(DiscoveryCtrl {
                            instance,
                            owner: Owner::Foreign,
                            cntlid: 0,
                            subsysnqn: Default::default(),
                            ino,
                        });
                    }
                }
                self.wake(id);
            }
            Input::FcDiscovery { addr } => {
                let Some(id) = self.slot_for(&addr, Origin::FcEvent, OptsRef::Global, out) else {
                    return;
                };
                if let Some(s) = self.table.get_mut(id) {
                    // The kernel says the port pair is there now: retry at once, from the start.
                    s.orphan_since = None;
                    if let SlotState::WaitRetry { .. } = s.state {
                        s.state = SlotState::Idle;
                        s.failures = 0;
                        s.auth_failing = false;
                    }
                }
                self.mark_pending(id);
            }
            Input::CtrlRemoved { instance, current } => {
                self.ctrl_removed(instance, current, now, out)
            }
            Input::Rescan => {
                let ids: Vec<SlotId> = self.table.iter().map(|(id, _)| id).collect();
                for id in ids {
                    // What failed may have been the missing module or the lost events.
                    self.wake(id);
                }
            }
            Input::ConfigReloading => {
                // A reload may bring the right key: entries that failed authentication are tried
                // by the rediscovery that follows, not after their long wait.
                for r in self.entry_retries.iter_mut().flatten() {
                    if r.auth {
                        r.at = r.at.min(now);
                    }
                }
                for (_, s) in self.table.iter_mut() {
                    s.opts = OptsRef::Global;
                    if s.origin == Origin::Config {
                        s.unconfirmed = true;
                    }
                }
            }
            Input::ConfigReloaded => {
                let gone: Vec<SlotId> = self
                    .table
                    .iter()
                    .filter(|(_, s)| s.unconfirmed)
                    .map(|(id, _)| id)
                    .collect();
                for id in gone {
                    let Some(s) = self.table.get_mut(id) else {
                        continue;
                    };
                    s.unconfirmed = false;
                    if s.state == SlotState::Discovering {
                        // Cannot happen from the synchronous shell; never pull a slot from under a run.
                        s.origin = Origin::Startup;
                        continue;
                    }
                    if s.referrers != 0 {
                        // A log still names it: it stays, as the referral it also is.
                        info!(
                            "{} is no longer in the configuration: kept as a referral",
                            s.addr
                        );
                        s.origin = Origin::Referral;
                        continue;
                    }
                    if s.is_direct() {
                        // Never disconnected: a reload never tears down I/O (as nvme-cli).
                        info!(
                            "{} at {} is no longer in the configuration: no longer kept connected",
                            s.subsystem, s.addr
                        );
                    } else {
                        info!("{} is no longer in the configuration: releasing it", s.addr);
                    }
                    self.release(id, out);
                }
                self.update_orphans(now);
            }
            Input::Terminate => {
                self.terminating = true;
                self.finish_if_idle(out);
            }
        }
    }

    fn ctrl_removed(
        &mut self,
        instance: u32,
        current: Option<u64>,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        // Any controller that goes may have been a directly connected subsystem's: each such
        // slot checks sysfs (a failing one keeps its backoff). The event does not say which
        // subsystem the controller had, and instance numbers are reused at once.
        // By slot number, not a collected list: a remove event allocates nothing.
        for id in Table::ids() {
            if self.table.get(id).is_some_and(|s| s.is_direct()) {
                self.mark_pending(id);
            }
        }
        // Two slots may name the same number with different identities (ours, gone, and the
        // controller that got the number since): the identity decides for each.
        for id in Table::ids() {
            let names_it = |s: &Slot| s.dc.is_some_and(|d| d.instance == instance);
            if self.table.get(id).is_some_and(names_it) {
                self.dc_removed(id, instance, current, now, out);
            }
        }
    }

    fn dc_removed(
        &mut self,
        id: SlotId,
        instance: u32,
        current: Option<u64>,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let persistent = self.cfg.persistent;
        let Some(s) = self.table.get_mut(id) else {
            return;
        };
        let Some(dc) = s.dc else {
            return;
        };
        if ownership::removal(&dc, current) == Removal::Stale {
            debug!(
                "late remove event for nvme{instance}: the discovery controller for {} is still up",
                s.addr
            );
            // The kernel sends the event while the directory may still be there, and an identity
            // it could not read says nothing: the run checks the controller itself.
            self.mark_pending(id);
            return;
        }
        let was_ours = dc.owner.is_ours();
        s.dc = None;
        if was_ours {
            out.push(Action::StateChanged);
        }
        if self.terminating {
            return;
        }
        if persistent && (s.origin.is_wanted() || was_ours) {
            info!(
                "discovery controller nvme{} for {} is gone: recreating it",
                instance, s.addr
            );
            // Backoff from the second loss on, so a controller that keeps vanishing cannot spin us.
            // A run in progress keeps its state: its result decides what comes next.
            if s.failures > 0 && s.state != SlotState::Discovering {
                let delay = if s.auth_failing {
                    self.cfg.auth_retry
                } else {
                    backoff(&self.cfg, s.failures)
                };
                s.state = SlotState::WaitRetry { at: now + delay };
            }
            self.mark_pending(id);
        } else if s.state == SlotState::Idle && !s.origin.is_wanted() {
            debug!(
                "forgetting {}: its discovery controller nvme{} is gone",
                s.addr, instance
            );
            self.release(id, out);
        }
    }

    /// Release the addresses whose grace period is over. Call before asking for work.
    pub fn expire(&mut self, now: Millis, out: &mut Vec<Action>) {
        self.last_now = self.last_now.max(now);
        if self.terminating {
            return;
        }
        let grace = self.cfg.prune_grace;
        let due: Vec<SlotId> = self
            .table
            .iter()
            .filter(|(_, s)| {
                s.state != SlotState::Discovering
                    && !s.origin.is_configured()
                    && s.orphan_since
                        .is_some_and(|t| t.saturating_add(grace) <= now)
            })
            .map(|(id, _)| id)
            .collect();
        for id in due {
            if let Some(s) = self.table.get(id) {
                info!(
                    "releasing {} (from {}): nothing has asked for it for {} s",
                    s.addr,
                    s.origin.name(),
                    grace / 1000
                );
            }
            self.release(id, out);
        }
    }

    /// The next slot to discover, FIFO among those due; marks it discovering.
    pub fn next_work(&mut self, now: Millis) -> Option<SlotId> {
        if self.terminating {
            return None;
        }
        if self
            .table
            .iter()
            .any(|(_, s)| s.state == SlotState::Discovering)
        {
            return None; // one discovery at a time: the shell is synchronous
        }
        // FIFO: a retry is queued when its run fails, so a failing address and a busy healthy one
        // take turns.
        let (id, _) = self
            .table
            .iter()
            .filter(|(_, s)| slot_due(s, now))
            .min_by_key(|(_, s)| s.queued_seq)?;
        let s = self.table.get_mut(id)?;
        s.state = SlotState::Discovering;
        s.pending = false;
        Some(id)
    }

    /// A failing entry whose retry is due (after every due discovery: a run retries its entries
    /// anyway). The shell connects it and reports with [`Engine::entry_retry_done`].
    pub fn next_entry_retry(&self, now: Millis) -> Option<(EntryRetryId, EntryRetry)> {
        if self.terminating || self.has_due_discovery(now) {
            return None;
        }
        self.entry_retries
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((EntryRetryId(i), (*r)?)))
            .filter(|(_, r)| r.at <= now)
            .min_by_key(|(_, r)| r.at)
    }

    /// The entries whose last failure was an authentication failure.
    #[cfg(test)]
    pub fn auth_failing_entries(&self) -> Vec<EntryKey> {
        self.entry_retries
            .iter()
            .flatten()
            .filter(|r| r.auth)
            .map(|r| r.key)
            .collect()
    }

    pub fn entry_retry_done(&mut self, id: EntryRetryId, result: RetryResult, now: Millis) {
        let finished = matches!(result, RetryResult::Done | RetryResult::Dropped);
        let cfg = self.cfg;
        let Some(place) = self.entry_retries.get_mut(id.0) else {
            return;
        };
        let Some(r) = place.as_mut() else {
            return;
        };
        if finished {
            if result == RetryResult::Done {
                info!("{} at {}: connected on retry", r.key.subnqn, r.key.addr);
            } else {
                debug!("{} at {}: not retried any more", r.key.subnqn, r.key.addr);
            }
            *place = None;
        } else if result == RetryResult::AuthFailed {
            if !r.auth {
                say_auth_failed(
                    format_args!("{} at {}", r.key.subnqn, r.key.addr),
                    cfg.auth_retry,
                );
            }
            r.auth = true;
            r.failures = r.failures.max(AUTH_FAILURES);
            r.at = now + cfg.auth_retry;
        } else {
            // Failing for another reason after an authentication failure: the count starts over.
            r.failures = if r.auth {
                1
            } else {
                r.failures.saturating_add(1)
            };
            r.auth = false;
            let delay = backoff(&cfg, r.failures);
            r.at = now + delay;
            info!(
                "{} at {} failed ({} in a row): retrying it alone in {} ms",
                r.key.subnqn, r.key.addr, r.failures, delay
            );
        }
    }

    /// Record the entries of slot `id`'s log that failed this run; entries that no longer fail (or
    /// are no longer listed) are forgotten. False if the list is full (the slot then retries whole).
    fn record_failed_entries(
        &mut self,
        id: SlotId,
        failed: &[EntryKey],
        auth_failed: &[EntryKey],
        skipped: &[EntryKey],
        now: Millis,
    ) -> bool {
        let cfg = self.cfg;
        let mut fits = true;
        let listed = |r: &EntryRetry| failed.contains(&r.key) || skipped.contains(&r.key);
        let kept = &mut self.entry_retries;
        for place in kept.iter_mut() {
            if place.is_some_and(|r| r.slot == id && !listed(&r)) {
                *place = None;
            }
        }
        for key in failed {
            let auth = auth_failed.contains(key);
            let count = |failures: u32| {
                if auth {
                    failures.max(AUTH_FAILURES)
                } else {
                    failures
                }
            };
            let delay = |failures: u32| {
                if auth {
                    cfg.auth_retry
                } else {
                    backoff(&cfg, failures)
                }
            };
            if let Some(r) = kept
                .iter_mut()
                .flatten()
                .find(|r| r.slot == id && r.key == *key)
            {
                if auth && !r.auth {
                    say_auth_failed(
                        format_args!("{} at {}", key.subnqn, key.addr),
                        cfg.auth_retry,
                    );
                }
                let before = if r.auth && !auth { 0 } else { r.failures };
                r.auth = auth;
                r.failures = count(before.saturating_add(1));
                r.at = now + delay(r.failures);
                continue;
            }
            match kept.iter_mut().find(|r| r.is_none()) {
                Some(free) => {
                    if auth {
                        say_auth_failed(
                            format_args!("{} at {}", key.subnqn, key.addr),
                            cfg.auth_retry,
                        );
                    }
                    *free = Some(EntryRetry {
                        slot: id,
                        key: *key,
                        failures: count(1),
                        at: now + delay(count(1)),
                        auth,
                    })
                }
                None => {
                    error!(
                        "entry retry list full ({ENTRY_RETRY_CAPACITY}): {} at {} waits for the next discovery",
                        key.subnqn, key.addr
                    );
                    fits = false;
                }
            }
        }
        fits
    }

    /// A discovery run finished.
    pub fn discovery_done(
        &mut self,
        id: SlotId,
        outcome: Outcome,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let cfg = self.cfg;
        self.last_now = self.last_now.max(now);
        self.seq += 1;
        let seq = self.seq;
        let mut ok = outcome.ok;
        if ok
            && !self.record_failed_entries(
                id,
                &outcome.failed_entries,
                &outcome.auth_failed_entries,
                &outcome.skipped_entries,
                now,
            )
        {
            ok = false;
        }
        let Some(s) = self.table.get_mut(id) else {
            return;
        };
        s.discoveries += 1;
        let ours_before = s.dc.filter(|d| d.owner.is_ours());
        s.dc = outcome.dc;
        if ours_before != s.dc.filter(|d| d.owner.is_ours()) {
            out.push(Action::StateChanged);
        }
        if outcome.addr_gone && s.origin == Origin::FcEvent && s.orphan_since.is_none() {
            info!(
                "{}: the FC transport knows no such port pair: released in {} s unless it comes back",
                s.addr,
                cfg.prune_grace / 1000
            );
            s.orphan_since = Some(now);
        }
        if ok {
            s.failures = 0;
            s.auth_failing = false;
            s.refusing = false;
            s.state = SlotState::Idle;
            if s.origin == Origin::FcEvent {
                s.orphan_since = None;
            }
            if s.temporary && cfg.persistent && cfg.epcsd_poll > 0 && !self.terminating {
                // No persistent controller, so no AEN tells us its log changed: read it again
                // later (its parent's next run, e.g. on an AEN, cuts this short).
                debug!(
                    "{}: no explicit persistent connection support (EPCSD): its log is read again in {} s",
                    s.addr,
                    cfg.epcsd_poll / 1000
                );
                s.state = SlotState::WaitRetry {
                    at: now + cfg.epcsd_poll,
                };
            }
        } else {
            let was_auth = s.auth_failing;
            if outcome.auth_failed && !was_auth {
                let what = if s.is_direct() {
                    format!("{} at {}", s.subsystem, s.addr)
                } else {
                    format!("discovery controller at {}", s.addr)
                };
                say_auth_failed(format_args!("{what}"), cfg.auth_retry);
            }
            if was_auth != outcome.auth_failed {
                // Failing for another reason now (or for this one first): the count starts over.
                s.failures = 0;
            }
            s.auth_failing = outcome.auth_failed;
            s.refusing = outcome.refused;
            s.failures = s.failures.saturating_add(1);
            let delay = if outcome.auth_failed {
                cfg.auth_retry
            } else {
                backoff(&cfg, s.failures)
            };
            s.state = SlotState::WaitRetry { at: now + delay };
            if !s.pending {
                s.queued_seq = seq;
            }
            if outcome.auth_failed {
                debug!("{}: retrying in {delay} ms", s.addr);
            } else if s.is_direct() {
                info!(
                    "connecting {} at {} failed ({} in a row): retrying in {} ms",
                    s.subsystem, s.addr, s.failures, delay
                );
            } else {
                info!(
                    "discovery at {} failed ({} in a row): retrying in {} ms",
                    s.addr, s.failures, delay
                );
            }
        }
        let parent_opts = s.opts;
        let parent_temporary = s.temporary;
        if outcome.ok {
            // The log was read: what it no longer names loses this referrer.
            self.drop_referrer(id, Some((&outcome.referrals, now)));
        }
        let bit = referrer_bit(id);
        for r in &outcome.referrals {
            if let Some(rid) = self.table.find(&r.addr) {
                if let Some(rs) = self.table.get_mut(rid) {
                    if rid != id {
                        rs.referrers |= bit;
                        if rs.origin == Origin::Referral {
                            // Its options are its parent's (a reload reset them to the global ones),
                            // and whether it is reached over TLS what its entry says now (an
                            // adopted referral, or one kept after its configuration line went,
                            // came in without it).
                            rs.opts = parent_opts;
                            rs.tls = r.tls;
                        }
                    }
                }
                // Its EPCSD wait only: a failure backoff stays (a black-holed port must not be
                // tried on every AEN of its parent).
                let polled = self
                    .table
                    .get(rid)
                    .is_some_and(|rs| rs.temporary && rs.failures == 0);
                if rid != id && polled && !parent_temporary {
                    // A controller we cannot keep sends no AENs: when the log that names it is
                    // read again, so is its. Only from a kept parent, whose runs come from events:
                    // temporaries naming each other must not feed each other runs for ever.
                    self.wake(rid);
                } else {
                    debug!(
                        "referral to {} already known: not following it again",
                        r.addr
                    );
                }
                continue;
            }
            // A referral is reached with the options of the line its parent came from, as
            // `nvme connect-all` passes its own options on when it follows one.
            if let Some(rid) = self.slot_for(&r.addr, Origin::Referral, parent_opts, out) {
                if let Some(rs) = self.table.get_mut(rid) {
                    rs.temporary = !r.persistent_ok;
                    rs.dc_nqn = r.dc_nqn;
                    rs.tls = r.tls;
                    rs.referrers |= bit;
                }
                self.mark_pending(rid);
            }
        }
        self.update_orphans(now);
        self.finish_if_idle(out);
    }

    /// After SIGTERM and once nothing runs: delete our discovery controllers (unless `--keep`), exit.
    fn finish_if_idle(&mut self, out: &mut Vec<Action>) {
        if !self.terminating || self.exited {
            return;
        }
        if self
            .table
            .iter()
            .any(|(_, s)| s.state == SlotState::Discovering)
        {
            return;
        }
        if !self.cfg.keep {
            let mut changed = false;
            for (_, s) in self.table.iter_mut() {
                if s.origin == Origin::Nbft {
                    if let Some(dc) = s.dc.filter(|d| d.owner.is_ours()) {
                        info!(
                            "leaving nvme{} for {} up: a path from the firmware's boot table (NBFT)",
                            dc.instance, s.addr
                        );
                    }
                    continue;
                }
                if let Some(dc) = s.dc.filter(|d| d.owner.is_ours()) {
                    out.push(Action::DeleteDc { dc, addr: s.addr });
                    s.dc = None;
                    changed = true;
                }
            }
            if changed {
                out.push(Action::StateChanged);
            }
        }
        self.exited = true;
        out.push(Action::Exit);
    }

    /// When the shell must wake up next without an event (`None`: sleep until an event).
    pub fn next_deadline(&self) -> Option<Millis> {
        let grace = self.cfg.prune_grace;
        let slots = self.table.iter().filter_map(|(_, s)| {
            let retry = match s.state {
                SlotState::WaitRetry { at } => Some(at),
                _ => None,
            };
            let release = s
                .orphan_since
                .filter(|_| !s.origin.is_configured())
                .map(|t| t.saturating_add(grace));
            match (retry, release) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
        slots.chain(self.entry_retries().map(|r| r.at)).min()
    }

    fn has_due_discovery(&self, now: Millis) -> bool {
        self.table.iter().any(|(_, s)| slot_due(s, now))
    }

    /// Work is queued that can run now.
    pub fn has_due_work(&self, now: Millis) -> bool {
        self.has_due_discovery(now) || self.entry_retries().any(|r| r.at <= now)
    }

    /// Our discovery controllers, for the handoff state file.
    pub fn owned(&self) -> impl Iterator<Item = (&TransportAddr, &DiscoveryCtrl, Origin)> {
        self.table.iter().filter_map(|(_, s)| {
            s.dc.as_ref()
                .filter(|d| d.owner.is_ours())
                .map(|d| (&s.addr, d, s.origin))
        })
    }
}

fn slot_due(s: &Slot, now: Millis) -> bool {
    match s.state {
        SlotState::Idle => s.pending,
        SlotState::WaitRetry { at } => at <= now,
        SlotState::Discovering => false,
    }
}

/// Retry delay after `failures` consecutive failures: base, 2x, 4x, ... up to the cap.
pub fn backoff(cfg: &EngineConfig, failures: u32) -> Millis {
    let shift = failures.saturating_sub(1).min(32);
    cfg.retry_base
        .saturating_mul(1u64 << shift)
        .min(cfg.retry_cap)
}

#[cfg(test)]
mod tests;
