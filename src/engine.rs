//! The decision engine: events in, actions out, no I/O.
//!
//! The shell feeds it classified kernel events, discovery results, signals and the current time; the
//! engine updates the connection table and says what to do next. Because it performs no I/O, every
//! decision (coalescing, retry, adoption, teardown, referrals) is tested here with event sequences.
//!
//! Coalescing: an event for an address only sets the slot's `pending` flag. The shell asks for work
//! with [`Engine::next_work`] after draining the uevent socket, so any number of events that arrived
//! for one address while its discovery ran become exactly one re-run.

use crate::addr::TransportAddr;
use crate::table::{DiscoveryCtrl, Millis, OptsRef, Origin, Owner, Slot, SlotId, SlotState, Table};

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            persistent: false,
            keep: false,
            retry_base: 1_000,
            retry_cap: 60_000,
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
    /// A discovery controller that exists already (startup scan, rescan, or the handoff file).
    Existing {
        addr: TransportAddr,
        dc: DiscoveryCtrl,
        origin: Origin,
    },
    /// Discovery log change AEN or `NVME_EVENT=rediscover` from /dev/nvme`instance`.
    LogChanged { instance: u32, addr: TransportAddr },
    /// A discovery controller became live (`NVME_EVENT=connected`, checked in sysfs by the shell).
    DcLive { instance: u32, addr: TransportAddr },
    /// FC `nvmediscovery`: a remote port with discovery service appeared.
    FcDiscovery { addr: TransportAddr },
    /// /dev/nvme`instance` was removed.
    CtrlRemoved { instance: u32 },
    /// Events were lost (ENOBUFS on the uevent socket), or /dev/nvme-fabrics appeared: re-run
    /// discovery everywhere now, waiting retries included.
    Rescan,
    /// The configuration is about to be re-read (SIGHUP): forget which addresses it named and which
    /// line's options they use; the `Configured` inputs that follow name them again.
    ConfigReloading,
    /// SIGTERM or SIGINT.
    Terminate,
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
}

/// A discovery controller a log pointed to (a referral, or another port of the current discovery
/// subsystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referral {
    pub addr: TransportAddr,
    /// May be kept as a persistent discovery controller: it answers to the well-known discovery NQN
    /// or says it supports explicit persistent connections (EPCSD), as nvme-cli decides it.
    pub persistent_ok: bool,
}

/// What the shell must do.
// Pushed into a Vec the shell reuses; boxing the address would allocate per action.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delete our discovery controller `dc` at `addr` (at exit). The shell checks first that the
    /// device is still that controller: instance numbers are reused.
    DeleteDc {
        dc: DiscoveryCtrl,
        addr: TransportAddr,
    },
    /// The set of discovery controllers we own changed: rewrite the handoff state file.
    StateChanged,
    /// Leave the loop.
    Exit,
}

pub struct Engine {
    pub cfg: EngineConfig,
    table: Table,
    seq: u64,
    terminating: bool,
    exited: bool,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            table: Table::default(),
            seq: 0,
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

    /// Find the slot for `addr` or make one; a full table is logged and refused.
    fn slot_for(&mut self, addr: &TransportAddr, origin: Origin, opts: OptsRef) -> Option<SlotId> {
        if let Some(id) = self.table.find(addr) {
            return Some(id);
        }
        match self.table.insert(Slot::new(*addr, origin, opts)) {
            Ok(id) => {
                debug!("slot {}: {} (from {})", id.0, addr, origin.name());
                Some(id)
            }
            Err(_) => {
                error!(
                    "connection table full ({} slots): not tracking {} (from {}); raise table::CAPACITY",
                    crate::table::CAPACITY,
                    addr,
                    origin.name()
                );
                None
            }
        }
    }

    /// Slot an event from /dev/nvme`instance` at `addr` belongs to: by controller first, then address.
    fn slot_of_event(&self, instance: u32, addr: &TransportAddr) -> Option<SlotId> {
        self.table
            .find_dc(instance)
            .or_else(|| self.table.find_any_host(addr))
    }

    /// Feed one input; actions are appended to `out` (reused by the caller: no allocation per event).
    pub fn handle(&mut self, input: Input, now: Millis, out: &mut Vec<Action>) {
        match input {
            Input::Configured { addr, opts } => {
                if let Some(id) = self.slot_for(&addr, Origin::Config, opts) {
                    if let Some(s) = self.table.get_mut(id) {
                        // Configuration is the strongest reason to keep an address.
                        s.origin = Origin::Config;
                        s.opts = opts;
                    }
                    self.mark_pending(id);
                }
            }
            Input::Existing { addr, dc, origin } => {
                let Some(id) = self.slot_for(&addr, origin, OptsRef::Global) else {
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
                self.mark_pending(id);
            }
            Input::LogChanged { instance, addr } | Input::DcLive { instance, addr } => {
                let known = self.table.find_dc(instance).is_some();
                if known && matches!(input, Input::DcLive { .. }) {
                    // Our own connect (or a reconnect, which the kernel follows with `rediscover`).
                    return;
                }
                let id = match self.slot_of_event(instance, &addr) {
                    Some(id) => id,
                    None => match self.slot_for(&addr, Origin::Aen, OptsRef::Global) {
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
                        });
                    }
                }
                self.mark_pending(id);
            }
            Input::FcDiscovery { addr } => {
                let Some(id) = self.slot_for(&addr, Origin::FcEvent, OptsRef::Global) else {
                    return;
                };
                if let Some(s) = self.table.get_mut(id) {
                    if let SlotState::WaitRetry { .. } = s.state {
                        // The kernel says the port pair is there now: retry at once.
                        s.state = SlotState::Idle;
                        s.failures = 0;
                    }
                }
                self.mark_pending(id);
            }
            Input::CtrlRemoved { instance } => self.ctrl_removed(instance, now, out),
            Input::Rescan => {
                let ids: Vec<SlotId> = self.table.iter().map(|(id, _)| id).collect();
                for id in ids {
                    if let Some(s) = self.table.get_mut(id) {
                        if let SlotState::WaitRetry { .. } = s.state {
                            // What failed may have been the missing module or the lost events.
                            s.state = SlotState::Idle;
                        }
                    }
                    self.mark_pending(id);
                }
            }
            Input::ConfigReloading => {
                for (_, s) in self.table.iter_mut() {
                    s.opts = OptsRef::Global;
                    if s.origin == Origin::Config {
                        // Still known (its controller may be ours), no longer asked for.
                        s.origin = Origin::Startup;
                    }
                }
            }
            Input::Terminate => {
                self.terminating = true;
                self.finish_if_idle(out);
            }
        }
    }

    fn ctrl_removed(&mut self, instance: u32, now: Millis, out: &mut Vec<Action>) {
        let Some(id) = self.table.find_dc(instance) else {
            return;
        };
        let persistent = self.cfg.persistent;
        let Some(s) = self.table.get_mut(id) else {
            return;
        };
        let was_ours = s.dc.is_some_and(|d| d.owner.is_ours());
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
                let delay = backoff(&self.cfg, s.failures);
                s.state = SlotState::WaitRetry { at: now + delay };
            }
            self.mark_pending(id);
        } else if s.state == SlotState::Idle && !s.origin.is_wanted() {
            debug!(
                "forgetting {}: its discovery controller nvme{} is gone",
                s.addr, instance
            );
            self.table.remove(id);
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
        let due = |s: &Slot| match s.state {
            SlotState::Idle => s.pending,
            SlotState::WaitRetry { at } => at <= now,
            SlotState::Discovering => false,
        };
        // FIFO: a retry is queued when its run fails, so a failing address and a busy healthy one
        // take turns.
        let (id, _) = self
            .table
            .iter()
            .filter(|(_, s)| due(s))
            .min_by_key(|(_, s)| s.queued_seq)?;
        let s = self.table.get_mut(id)?;
        s.state = SlotState::Discovering;
        s.pending = false;
        Some(id)
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
        self.seq += 1;
        let seq = self.seq;
        let Some(s) = self.table.get_mut(id) else {
            return;
        };
        s.discoveries += 1;
        let ours_before = s.dc.filter(|d| d.owner.is_ours());
        s.dc = outcome.dc;
        if ours_before != s.dc.filter(|d| d.owner.is_ours()) {
            out.push(Action::StateChanged);
        }
        if outcome.ok {
            s.failures = 0;
            s.state = SlotState::Idle;
        } else {
            s.failures = s.failures.saturating_add(1);
            let delay = backoff(&cfg, s.failures);
            s.state = SlotState::WaitRetry { at: now + delay };
            if !s.pending {
                s.queued_seq = seq;
            }
            info!(
                "discovery at {} failed ({} in a row): retrying in {} ms",
                s.addr, s.failures, delay
            );
        }
        for r in &outcome.referrals {
            if self.table.find(&r.addr).is_some() {
                debug!(
                    "referral to {} already known: not following it again",
                    r.addr
                );
                continue;
            }
            if let Some(rid) = self.slot_for(&r.addr, Origin::Referral, OptsRef::Global) {
                if let Some(rs) = self.table.get_mut(rid) {
                    rs.temporary = !r.persistent_ok;
                }
                self.mark_pending(rid);
            }
        }
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
        self.table
            .iter()
            .filter_map(|(_, s)| match s.state {
                SlotState::WaitRetry { at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Work is queued that can run now.
    pub fn has_due_work(&self, now: Millis) -> bool {
        self.table.iter().any(|(_, s)| match s.state {
            SlotState::Idle => s.pending,
            SlotState::WaitRetry { at } => at <= now,
            SlotState::Discovering => false,
        })
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

/// Retry delay after `failures` consecutive failures: base, 2x, 4x, ... up to the cap.
pub fn backoff(cfg: &EngineConfig, failures: u32) -> Millis {
    let shift = failures.saturating_sub(1).min(32);
    cfg.retry_base
        .saturating_mul(1u64 << shift)
        .min(cfg.retry_cap)
}

#[cfg(test)]
mod tests;
