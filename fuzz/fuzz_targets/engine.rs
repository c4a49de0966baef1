//! The engine driven by a byte-coded sequence of inputs, discovery runs and clock steps, checked
//! against the invariants the daemon relies on:
//! - at most one slot is Discovering;
//! - `Action::DeleteDc` only names a controller of ours, never one that came in as
//!   `Owner::Foreign`, and never with `--keep`;
//! - after Terminate, once no discovery runs, the last action is `Exit` (and without `--keep`
//!   nothing of ours is left);
//! - a subsystem connected directly (`[Subsystem]`) never gets a discovery controller;
//! - an entry whose last failure was an authentication failure is not retried on its own before
//!   `auth_retry` has passed, unless a SIGHUP (ConfigReloading) came in between.
//!
//! The harness plays the shell: instance numbers of controllers we create are fresh (1000 and up,
//! never reused), foreign controllers are nvme0..nvme7, and events name either a foreign
//! controller or one of ours that is still up, as the kernel would.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use nvme_monitor::addr::{Nqn, Transport, TransportAddr};
use nvme_monitor::engine::{
    Action, Engine, EngineConfig, EntryKey, Input, Outcome, Referral, RetryResult,
};
use nvme_monitor::table::{DiscoveryCtrl, OptsRef, Origin, Owner, SlotId, SlotState};

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    /// Parameters past the end of the input read as zero, so every opcode is usable.
    fn arg(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }
}

fn addr(b: u8) -> TransportAddr {
    let a = match b % 12 {
        i @ 0..=7 => TransportAddr::new(Transport::Tcp, &format!("192.168.1.{i}"), "8009", "", ""),
        8 => TransportAddr::new(Transport::Tcp, "192.168.1.1", "8009", "", "eth1"),
        9 => TransportAddr::new(
            Transport::Fc,
            "nn-0x10001100ab000001:pn-0x20001100ab000001",
            "",
            "nn-0x10001100aa000001:pn-0x20001100aa000001",
            "",
        ),
        10 => TransportAddr::new(Transport::Loop, "", "", "", ""),
        _ => TransportAddr::new(Transport::Rdma, "10.0.0.1", "4420", "", ""),
    };
    let mut a = a.expect("pool addresses fit");
    // Same port, another host NQN: a uevent (no host NQN) matches either slot.
    if b & 0x80 != 0 {
        a.hostnqn = Nqn::new("nqn.2014-08.org.nvmexpress:uuid:fuzz").expect("fits");
    }
    a
}

/// One of three subsystems at one of the pool's addresses, as a discovery log entry names it.
fn entry_key(b: u8) -> EntryKey {
    let nqn = [
        "nqn.2024-01.io.example:e1",
        "nqn.2024-01.io.example:e2",
        "nqn.2024-01.io.example:e3",
    ][usize::from(b >> 6) % 3];
    EntryKey {
        addr: addr(b & 0x3f),
        subnqn: Nqn::new(nqn).expect("fits"),
        ask: Default::default(),
    }
}

fn origin(b: u8) -> Origin {
    [
        Origin::Config,
        Origin::FcEvent,
        Origin::Referral,
        Origin::Aen,
        Origin::Startup,
        Origin::Nbft,
    ][b as usize % 6]
}

fn ctrl(instance: u32, owner: Owner) -> DiscoveryCtrl {
    DiscoveryCtrl {
        instance,
        owner,
        cntlid: 1,
        subsysnqn: Nqn::EMPTY,
        ino: 10_000 + u64::from(instance),
    }
}

struct Shell {
    e: Engine,
    out: Vec<Action>,
    now: u64,
    running: Option<SlotId>,
    next_ours: u32,
    ours_given: Vec<u32>,
    foreign: BTreeSet<u32>,
    terminated: bool,
    exited: bool,
    /// Addresses an NBFT input put in the table: they must stay, as NBFT slots, for ever.
    nbft: Vec<TransportAddr>,
    /// Per (slot, entry) refused for authentication: no retry of its own before this time.
    auth_quiet_until: Vec<((u16, EntryKey), u64)>,
}

impl Shell {
    fn quiet(&mut self, place: (u16, EntryKey), until: Option<u64>) {
        self.auth_quiet_until.retain(|(p, _)| *p != place);
        if let Some(t) = until {
            self.auth_quiet_until.push((place, t));
        }
    }

    fn fresh_ours(&mut self) -> u32 {
        self.next_ours += 1;
        self.ours_given.push(self.next_ours);
        self.next_ours
    }

    fn foreign(&mut self, b: u8) -> u32 {
        let i = u32::from(b % 8);
        self.foreign.insert(i);
        i
    }

    /// An instance an event can come from: a foreign one, or one of ours that is still up.
    fn event_instance(&mut self, b: u8) -> u32 {
        let live: Vec<u32> = self.e.owned().map(|(_, d, _)| d.instance).collect();
        if b & 0x80 != 0 && !live.is_empty() {
            live[usize::from(b & 0x7f) % live.len()]
        } else {
            self.foreign(b)
        }
    }

    fn finish_run(&mut self, id: SlotId, b: &mut Bytes) {
        let ctl = b.arg();
        let prev = self.e.slot(id).and_then(|s| s.dc);
        // A directly connected subsystem's run makes no discovery controller and reads no log.
        let direct = self.e.slot(id).is_some_and(|s| s.is_direct());
        let dc = match (ctl >> 1) & 3 {
            _ if direct => None,
            0 => prev,
            1 => None,
            2 => Some(ctrl(self.fresh_ours(), Owner::Ours)),
            _ => {
                let i = self.foreign(b.arg());
                Some(ctrl(i, Owner::Foreign))
            }
        };
        let referrals = (0..if direct { 0 } else { (ctl >> 3) % 3 })
            .map(|_| {
                let r = b.arg();
                Referral {
                    addr: addr(r),
                    persistent_ok: r & 0x40 != 0,
                    dc_nqn: Nqn::EMPTY,
                    tls: false,
                }
            })
            .collect();
        // Entries of the log that failed, some of them for authentication.
        let ents = if direct { 0 } else { b.arg() };
        let mut failed_entries = Vec::new();
        let mut auth_failed_entries = Vec::new();
        for i in 0..ents & 3 {
            let k = entry_key(b.arg());
            if failed_entries.contains(&k) {
                continue;
            }
            failed_entries.push(k);
            if ents & (4 << i) != 0 {
                auth_failed_entries.push(k);
            }
        }
        let ok = ctl & 1 != 0;
        // A failed run leaves the entry retries as they were (its entries were not all tried).
        for k in failed_entries.iter().filter(|_| ok) {
            let place = (id.0, *k);
            let until = auth_failed_entries
                .contains(k)
                .then_some(self.now + self.e.cfg.auth_retry);
            self.quiet(place, until);
        }
        let outcome = Outcome {
            ok,
            dc,
            referrals,
            failed_entries,
            skipped_entries: Vec::new(),
            addr_gone: ctl & 0x20 != 0,
            auth_failed_entries,
            auth_failed: !ok && ctl & 0x40 != 0,
            refused: !ok && ctl & 0x80 != 0,
        };
        self.e.discovery_done(id, outcome, self.now, &mut self.out);
    }

    /// The shell's entry retry: connect it, report how it went.
    fn retry_entry(&mut self, b: &mut Bytes) -> bool {
        let Some((rid, r)) = self.e.next_entry_retry(self.now) else {
            return false;
        };
        let place = (r.slot.0, r.key);
        if let Some(&(_, until)) = self.auth_quiet_until.iter().find(|(p, _)| *p == place) {
            assert!(
                self.now >= until,
                "{} at {} refused for authentication is retried at {} ms, before {until}",
                r.key.subnqn,
                r.key.addr,
                self.now
            );
        }
        let result = match b.arg() % 4 {
            0 => RetryResult::Done,
            1 => RetryResult::Failed,
            2 => RetryResult::Dropped,
            _ => RetryResult::AuthFailed,
        };
        let until = (result == RetryResult::AuthFailed).then_some(self.now + self.e.cfg.auth_retry);
        self.quiet(place, until);
        self.e.entry_retry_done(rid, result, self.now);
        true
    }

    fn step(&mut self, op: u8, b: &mut Bytes) {
        self.now += u64::from(op >> 4) * 8;
        let now = self.now;
        let input = match op % 16 {
            0 => {
                let a = b.arg();
                let o = b.arg();
                let opts = match o {
                    0..=127 => OptsRef::Global,
                    n => OptsRef::Source(u16::from(n & 7)),
                };
                // Bit 6: an [Subsystem] connected directly at that address (two NQNs), beside
                // the discovery slot of the same address.
                if o & 0x40 != 0 {
                    let nqn = ["nqn.2024-01.io.example:d1", "nqn.2024-01.io.example:d2"]
                        [usize::from(o >> 5 & 1)];
                    Input::ConfiguredSubsystem {
                        addr: addr(a),
                        subsystem: Nqn::new(nqn).unwrap(),
                        opts,
                    }
                } else {
                    Input::Configured {
                        addr: addr(a),
                        opts,
                    }
                }
            }
            1 => {
                let (a, i, o) = (b.arg(), b.arg(), b.arg());
                Input::Existing {
                    addr: addr(a),
                    dc: ctrl(self.foreign(i), Owner::Foreign),
                    origin: origin(o),
                }
            }
            2 => {
                let (a, o) = (b.arg(), b.arg());
                let owner = if o & 0x80 != 0 {
                    Owner::Adopted
                } else {
                    Owner::Ours
                };
                Input::Existing {
                    addr: addr(a),
                    dc: ctrl(self.fresh_ours(), owner),
                    origin: origin(o),
                }
            }
            3 => {
                let (i, a) = (b.arg(), b.arg());
                Input::LogChanged {
                    instance: self.event_instance(i),
                    ino: 0,
                    addr: addr(a),
                }
            }
            4 => {
                let (i, a) = (b.arg(), b.arg());
                Input::DcLive {
                    instance: self.event_instance(i),
                    ino: 0,
                    addr: addr(a),
                }
            }
            5 => Input::FcDiscovery {
                addr: addr(b.arg()),
            },
            6 => {
                let i = b.arg();
                let instance = if i & 0x80 != 0 && !self.ours_given.is_empty() {
                    self.ours_given[usize::from(i & 0x7f) % self.ours_given.len()]
                } else {
                    u32::from(i % 8)
                };
                // What sysfs shows under the name when the event is read: nothing, the same
                // controller (a late remove of an earlier holder), or another one (reused).
                let current = match b.arg() % 3 {
                    0 => None,
                    1 => Some(10_000 + u64::from(instance)),
                    _ => Some(99_999),
                };
                Input::CtrlRemoved { instance, current }
            }
            14 => {
                let (a, o) = (b.arg(), b.arg());
                let subsystem = match o % 3 {
                    0 => Nqn::EMPTY,
                    1 => Nqn::new("nqn.2024-01.io.example:d1").unwrap(),
                    _ => Nqn::new("nqn.2024-01.io.example:boot").unwrap(),
                };
                let addr = addr(a);
                self.e.handle(
                    Input::Nbft {
                        addr,
                        subsystem,
                        opts: OptsRef::Source(u16::from(o >> 4)),
                    },
                    now,
                    &mut self.out,
                );
                let held = if subsystem.is_empty() {
                    self.e.table().find(&addr)
                } else {
                    self.e.table().find_subsystem(&addr, &subsystem)
                };
                if held.is_some() && !self.terminated {
                    self.nbft.push(addr);
                }
                return;
            }
            15 => {
                let (a, o) = (b.arg(), b.arg());
                let via = addr(a);
                Input::NetworkReady {
                    host_iface: if o & 1 != 0 {
                        via.host_iface
                    } else {
                        Default::default()
                    },
                    host_traddr: via.host_traddr.as_str().parse().ok(),
                }
            }
            7 => Input::Rescan,
            8 => {
                // SIGHUP: a fixed key may be in the configuration now.
                self.auth_quiet_until.clear();
                Input::ConfigReloading
            }
            13 => Input::ConfigReloaded,
            9 => {
                self.terminated = true;
                Input::Terminate
            }
            _ => {
                match self.running.take() {
                    Some(id) => self.finish_run(id, b),
                    None => {
                        self.e.expire(now, &mut self.out);
                        self.running = self.e.next_work(now);
                        if self.running.is_none() && op & 1 != 0 {
                            self.retry_entry(b);
                        }
                    }
                }
                return;
            }
        };
        self.e.handle(input, now, &mut self.out);
    }

    fn check(&mut self) {
        let discovering = self
            .e
            .table()
            .iter()
            .filter(|(_, s)| s.state == SlotState::Discovering)
            .count();
        assert!(discovering <= 1, "{discovering} slots discovering at once");
        assert_eq!(
            discovering,
            usize::from(self.running.is_some()),
            "the run we hold"
        );
        for (_, s) in self.e.table().iter() {
            assert!(
                !(s.is_direct() && s.dc.is_some()),
                "a directly connected subsystem at {} got a discovery controller",
                s.addr
            );
            if let Some(d) = s.dc.filter(|d| d.owner == Owner::Foreign) {
                self.foreign.insert(d.instance);
            }
        }
        for a in &self.nbft {
            assert!(
                self.e
                    .table()
                    .iter()
                    .any(|(_, s)| s.addr == *a && s.origin == Origin::Nbft),
                "the NBFT address {a} left the table or lost its origin"
            );
        }
        for a in &self.out {
            if let Action::DeleteDc { dc, addr } = a {
                assert!(
                    !self.terminated
                        || !self.e.table().iter().any(|(_, s)| s.addr == *addr
                            && !s.is_direct()
                            && s.origin == Origin::Nbft),
                    "deletes the NBFT's nvme{} at {addr} at exit",
                    dc.instance
                );
                assert!(
                    dc.owner.is_ours(),
                    "deletes {} nvme{} at {addr}",
                    dc.owner.name(),
                    dc.instance
                );
                assert!(
                    !self.foreign.contains(&dc.instance),
                    "deletes foreign nvme{} at {addr}",
                    dc.instance
                );
                // --keep is about exit: an address released while running (its line removed, a
                // referral no log names) has its controller deleted all the same.
                assert!(
                    !self.e.cfg.keep || !self.terminated,
                    "--keep deletes nvme{} at exit",
                    dc.instance
                );
            }
        }
        let exit_at = self.out.iter().position(|a| *a == Action::Exit);
        if let Some(i) = exit_at {
            assert!(self.terminated, "Exit without Terminate");
            assert_eq!(i + 1, self.out.len(), "actions after Exit: {:?}", self.out);
            if !self.e.cfg.keep {
                assert_eq!(
                    self.e
                        .owned()
                        .filter(|(_, _, o)| *o != Origin::Nbft)
                        .count(),
                    0,
                    "ours left after Exit"
                );
            }
            self.exited = true;
        } else if self.terminated && discovering == 0 {
            panic!("terminated, nothing runs, no Exit: {:?}", self.out);
        }
        self.out.clear();
    }
}

// Errors only: the info lines of every run would be most of the work (and gigabytes of output
// in a long run); what they format is fuzzed by the parser targets.
fuzz_target!(init: nvme_monitor::log::set_level(nvme_monitor::log::Level::Error), |data: &[u8]| {
    let mut b = Bytes(data);
    let (c, base, cap) = (b.arg(), b.arg(), b.arg());
    let retry_base = 1 + u64::from(base);
    let cfg = EngineConfig {
        persistent: c & 1 != 0,
        keep: c & 2 != 0,
        retry_base,
        retry_cap: retry_base * (1 + u64::from(cap % 64)),
        auth_retry: retry_base * (1 + u64::from(cap % 64)) * 4,
        prune_grace: u64::from(c >> 2) * 100,
        // Short enough that polls of temporaries happen within a run of the harness.
        epcsd_poll: u64::from(cap) * 50,
    };
    let mut sh = Shell {
        e: Engine::new(cfg),
        out: Vec::new(),
        now: 0,
        running: None,
        next_ours: 1000,
        ours_given: Vec::new(),
        foreign: BTreeSet::new(),
        terminated: false,
        exited: false,
        nbft: Vec::new(),
        auth_quiet_until: Vec::new(),
    };
    // The shell leaves its loop at Exit; inputs after that never reach the engine.
    while let Some(op) = b.next() {
        sh.step(op, &mut b);
        sh.check();
        if sh.exited {
            return;
        }
    }
    // End of input: SIGTERM, and let a running discovery finish.
    if !sh.terminated {
        sh.terminated = true;
        sh.e.handle(Input::Terminate, sh.now, &mut sh.out);
        sh.check();
    }
    if let Some(id) = sh.running.take() {
        sh.finish_run(id, &mut b);
        sh.check();
    }
    assert!(sh.exited, "input ended after Terminate without Exit");
});
