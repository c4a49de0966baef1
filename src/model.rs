//! A model of the daemon over the in-memory kernel, driven by a byte string: the engine, real
//! discovery runs and the real event mapping, with what a SAN does every week mixed in (numbers
//! reused at once, resets that change the cntlid, removes read late, controllers made behind our
//! back, ports down, subsystems coming and going). Used by the property test
//! (tests/ownership_model.rs) and the `ownership` fuzz target; a broken invariant is a panic
//! naming it.
//!
//! Invariants, after every step: nothing we did not create was deleted; never two discovery
//! controllers of ours at one address; no I/O connect written for a subsystem already connected
//! there; never a log read of a discovery controller another orchestrator registered. With
//! --persistent, once the fabric is healthy and every event is in, each configured address has a
//! discovery controller again, and a directly connected `[Subsystem]` its port offers is connected.
//! After SIGTERM none of ours is left.

use std::collections::VecDeque;

use crate::addr::{Transport, TransportAddr};
use crate::config::DiscoverySource;
use crate::discover::{self, Context};
use crate::engine::{Action, Engine, EngineConfig, Input};
use crate::events::{self, AEN_DISCOVERY_LOG_CHANGE};
use crate::fabrics::DISCOVERY_NQN;
use crate::fake_kernel::{FakeEvent, FakeEventKind, FakeKernel, FakePort};
use crate::kernel::Kernel;
use crate::opts::ConnectOpts;
use crate::table::{DiscoveryCtrl, OptsRef};
use crate::uevent::{Event, EventAddr};

const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:model";
const PORTS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
/// The `[Subsystem]` the configuration may name: connected directly, at a port of its own.
const DIRECT: (&str, &str) = ("10.0.0.4", "nqn.2024-01.io.example:direct");
const SUBS: [&str; 3] = [
    "nqn.2024-01.io.example:a",
    "nqn.2024-01.io.example:b",
    "nqn.2024-01.io.example:c",
];

/// The input as a stream of choices; past its end every choice is 0 and [`Ops::done`] is true.
struct Ops<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Ops<'_> {
    fn below(&mut self, n: u64) -> u64 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        u64::from(b) % n.max(1)
    }
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

fn tcp(traddr: &str) -> TransportAddr {
    TransportAddr::new(Transport::Tcp, traddr, "8009", "", "").unwrap()
}

#[derive(Clone)]
struct World {
    k: FakeKernel,
    engine: Engine,
    persistent: bool,
    queue: VecDeque<FakeEvent>,
    now: u64,
    exited: bool,
    out: Vec<Action>,
    /// Discovery runs and entry retries performed, for the figures.
    runs: u64,
}

impl World {
    fn new(persistent: bool) -> World {
        let k = FakeKernel::default();
        {
            let mut st = k.state.borrow_mut();
            for (i, a) in PORTS.iter().enumerate() {
                let mut p = FakePort::new(Transport::Tcp, a, "8009");
                p.subsystems = vec![SUBS[i].into(), SUBS[(i + 1) % 3].into()];
                if i == 0 {
                    p.referrals.push((
                        Transport::Tcp,
                        PORTS[1].into(),
                        "8009".into(),
                        DISCOVERY_NQN.into(),
                    ));
                }
                st.ports.push(p);
            }
            // Only the [Subsystem] path reaches this one: no log names it.
            let mut p = FakePort::new(Transport::Tcp, DIRECT.0, "8009");
            p.subsystems = vec![DIRECT.1.into()];
            st.ports.push(p);
        }
        World {
            k,
            engine: Engine::new(EngineConfig {
                persistent,
                ..EngineConfig::default()
            }),
            persistent,
            queue: VecDeque::new(),
            now: 0,
            exited: false,
            out: Vec::new(),
            runs: 0,
        }
    }

    /// A world configured with [`CONFIGURED`] after its first discovery runs.
    fn started(persistent: bool) -> World {
        let mut w = World::new(persistent);
        let sources = sources_of(&CONFIGURED, persistent);
        w.configure(&sources);
        w.run_due(&sources);
        w
    }

    fn collect_events(&mut self) {
        let evs = std::mem::take(&mut self.k.state.borrow_mut().events);
        self.queue.extend(evs);
    }

    /// Deliver up to `n` queued uevents, reading sysfs at delivery time as the daemon does.
    fn deliver(&mut self, n: usize) {
        for _ in 0..n {
            let Some(ev) = self.queue.pop_front() else {
                return;
            };
            let name = format!("nvme{}", ev.instance);
            let addr = EventAddr {
                transport: ev.transport,
                traddr: &ev.traddr,
                trsvcid: &ev.trsvcid,
                host_traddr: "",
                host_iface: "",
            };
            let uevent = match ev.kind {
                FakeEventKind::Connected => Event::Connected { ctrl: &name, addr },
                FakeEventKind::Rediscover => Event::Rediscover { ctrl: &name, addr },
                FakeEventKind::LogChanged => Event::Aen {
                    ctrl: &name,
                    addr,
                    aen: AEN_DISCOVERY_LOG_CHANGE,
                },
                FakeEventKind::Removed => Event::CtrlRemove { ctrl: &name, addr },
            };
            if let Some(input) = events::input_of(&uevent, &self.k, self.persistent, true) {
                self.engine.handle(input, self.now, &mut self.out);
            }
            self.perform();
        }
    }

    fn perform(&mut self) {
        for a in std::mem::take(&mut self.out) {
            match a {
                Action::DeleteDc { dc, addr } => {
                    discover::delete_if_ours(&self.k, &dc, &addr);
                }
                Action::StateChanged => {}
                Action::Exit => self.exited = true,
            }
        }
        self.collect_events();
    }

    fn configure(&mut self, sources: &[DiscoverySource]) {
        for input in crate::engine::configured_inputs(sources, HOST) {
            self.engine.handle(input, self.now, &mut self.out);
        }
        self.perform();
    }

    /// The shell's loop: due discoveries, then due entry retries, performing what comes out.
    fn run_due(&mut self, sources: &[DiscoverySource]) {
        let opts = ConnectOpts::default();
        let created = |_: &DiscoveryCtrl| {};
        let creating = |_: &TransportAddr, _: Option<u64>| {};
        let stop = || false;
        for _ in 0..50 {
            self.engine.expire(self.now, &mut self.out);
            self.perform();
            let work = self.engine.next_work(self.now);
            let waiting = work
                .map(|id| self.engine.entries_waiting(id, self.now))
                .unwrap_or_default();
            let ctx = Context {
                kernel: &self.k,
                hostnqn: HOST,
                hostid: None,
                global_opts: &opts,
                sources,
                subsystem_keys: &[],
                autoconnect: true,
                nbft_from: usize::MAX,
                persistent: self.persistent,
                dry_run: false,
                waiting_entries: &waiting,
                on_created: &created,
                on_creating: &creating,
                stop_requested: &stop,
                exclusions: &crate::exclusions::ExclusionList::default(),
                report: &Default::default(),
            };
            if let Some(id) = work {
                let slot = *self.engine.slot(id).unwrap();
                let outcome = discover::run(&ctx, &slot);
                self.engine
                    .discovery_done(id, outcome, self.now, &mut self.out);
            } else if let Some((rid, r)) = self.engine.next_entry_retry(self.now) {
                let o = self.engine.slot(r.slot).map_or(OptsRef::Global, |s| s.opts);
                let connected = discover::retry_entry(&ctx, &r.key, o);
                self.engine.entry_retry_done(rid, connected, self.now);
            } else {
                return;
            }
            self.runs += 1;
            self.perform();
            self.check();
        }
    }

    fn check(&self) {
        let st = self.k.state.borrow();
        assert!(
            st.foreign_deleted.is_empty(),
            "deleted controllers we did not create: {:?}",
            st.foreign_deleted
        );
        assert_eq!(
            st.duplicate_io_connects, 0,
            "an I/O subsystem was connected twice"
        );
        assert_eq!(
            st.claimed_log_reads, 0,
            "read the log of a discovery controller another orchestrator registered"
        );
        for a in PORTS {
            let ours = st
                .ctrls
                .values()
                .filter(|c| {
                    c.by_daemon
                        && c.ctrl.is_discovery()
                        && c.ctrl.traddr == a
                        && !c.ctrl.state.is_going_away()
                })
                .count();
            assert!(ours <= 1, "{ours} discovery controllers of ours at {a}");
        }
    }

    fn our_dcs(&self) -> Vec<String> {
        self.k
            .controllers()
            .into_iter()
            .filter(|c| c.is_discovery())
            .filter(|c| self.k.state.borrow().ctrls[&c.instance].by_daemon)
            .map(|c| c.name)
            .collect()
    }
}

/// What the configuration names at the start: the first and third port and the [Subsystem].
const CONFIGURED: [bool; 4] = [true, false, true, true];

/// The discovery sources the configuration gives: the ports `configured` names and, when its last
/// element is set, the directly connected [Subsystem].
fn sources_of(configured: &[bool; 4], persistent: bool) -> Vec<DiscoverySource> {
    let mut sources: Vec<DiscoverySource> = PORTS
        .iter()
        .zip(configured)
        .filter(|(_, c)| **c)
        .map(|(a, _)| DiscoverySource {
            addr: tcp(a),
            opts: ConnectOpts::default(),
            persistent,
            subsystem: Default::default(),
            explicit: false,
        })
        .collect();
    if configured[3] {
        sources.push(DiscoverySource {
            addr: tcp(DIRECT.0),
            opts: ConnectOpts::default(),
            persistent: false,
            subsystem: crate::addr::Nqn::new(DIRECT.1).unwrap_or_default(),
            explicit: false,
        });
    }
    sources
}

thread_local! {
    /// The world after its configuration and first discovery runs, which every input starts
    /// from: built once per mode, because building it is most of what a short input costs (the
    /// fuzz target ran at ~1,400 inputs/s building it each time).
    /// One mode at a time, boxed: a World is ~230 KB (the table), and debug builds keep several
    /// temporaries of it on the stack.
    static STARTS: std::cell::RefCell<[Option<Box<World>>; 2]> = const { std::cell::RefCell::new([None, None]) };
}

fn started(persistent: bool) -> World {
    STARTS.with(|s| {
        let mut s = s.borrow_mut();
        let start =
            s[usize::from(persistent)].get_or_insert_with(|| Box::new(World::started(persistent)));
        World::clone(start)
    })
}

/// Run the model over `input` (at most 400 steps); returns how many discovery runs and entry
/// retries it performed. Panics, naming the invariant, when one breaks.
pub fn run(input: &[u8], persistent: bool) -> u64 {
    let mut rng = Ops {
        bytes: input,
        pos: 0,
    };
    let mut w = started(persistent);
    // Which ports discovery.conf names, and (the last) whether nvme-fabrics.conf names DIRECT
    // as a [Subsystem]; a reload (SIGHUP) may change it.
    let mut configured = CONFIGURED;
    let mut sources = sources_of(&configured, persistent);
    for _ in 0..400 {
        if rng.done() {
            break;
        }
        match rng.below(12) {
            0 | 1 => {
                let n = rng.below(4) as usize;
                w.deliver(n);
            }
            2 => {
                // The kernel drops a controller (ctrl_loss_tmo, an admin's delete).
                let ids: Vec<u32> = w.k.state.borrow().ctrls.keys().copied().collect();
                if !ids.is_empty() {
                    let i = ids[rng.below(ids.len() as u64) as usize];
                    w.k.state.borrow_mut().remove(i);
                }
            }
            3 => {
                // A reset: the target hands out another cntlid.
                let ids: Vec<u32> = w.k.state.borrow().ctrls.keys().copied().collect();
                if !ids.is_empty() {
                    let i = ids[rng.below(ids.len() as u64) as usize];
                    w.k.state.borrow_mut().reset(i);
                }
            }
            4 => {
                // Somebody else's controller, at the lowest free number (often one just freed).
                let a = PORTS[rng.below(3) as usize];
                let discovery = rng.below(2) == 0;
                let nqn = if discovery {
                    DISCOVERY_NQN
                } else {
                    SUBS[rng.below(3) as usize]
                };
                // Half of them registered by another orchestrator (nvme-cli 3's registry).
                let claimed = rng.below(2) == 0;
                let mut st = w.k.state.borrow_mut();
                let i = st.add((Transport::Tcp, a, "8009"), nqn, HOST, discovery, false);
                if claimed {
                    st.claim(i, "stas");
                }
            }
            5 => {
                // A subsystem linked to or unlinked from a port: the log changes.
                let p = rng.below(3) as usize;
                let s = SUBS[rng.below(3) as usize].to_string();
                let mut st = w.k.state.borrow_mut();
                let port = &mut st.ports[p];
                if let Some(i) = port.subsystems.iter().position(|x| *x == s) {
                    port.subsystems.remove(i);
                } else {
                    port.subsystems.push(s);
                }
                st.log_changed((Transport::Tcp, PORTS[p], "8009"));
            }
            6 => {
                let p = rng.below(3) as usize;
                let mut st = w.k.state.borrow_mut();
                st.ports[p].up = !st.ports[p].up;
            }
            7 => w.now += rng.below(70_000),
            10 => {
                // SIGHUP after an edit of discovery.conf or nvme-fabrics.conf: a line added or
                // removed.
                let p = rng.below(4) as usize;
                configured[p] = !configured[p];
                sources = sources_of(&configured, persistent);
                w.engine.handle(Input::ConfigReloading, w.now, &mut w.out);
                w.configure(&sources);
                w.engine.handle(Input::ConfigReloaded, w.now, &mut w.out);
                w.perform();
            }
            11 => {
                // A referral appears or goes: port p names port q (ports naming each other
                // make the cycles real arrays have).
                let (p, q) = (rng.below(3) as usize, rng.below(3) as usize);
                if p != q {
                    let mut st = w.k.state.borrow_mut();
                    let r = (
                        Transport::Tcp,
                        PORTS[q].to_string(),
                        "8009".to_string(),
                        DISCOVERY_NQN.to_string(),
                    );
                    let refs = &mut st.ports[p].referrals;
                    if let Some(i) = refs.iter().position(|x| *x == r) {
                        refs.remove(i);
                    } else {
                        refs.push(r);
                    }
                    st.log_changed((Transport::Tcp, PORTS[p], "8009"));
                }
            }
            _ => {}
        }
        w.collect_events();
        w.check();
        w.run_due(&sources);
    }
    if persistent {
        // Liveness: once the fabric is healthy again and every event is in, each configured
        // address has a discovery controller again (a lost one of ours was noticed and recreated).
        for p in w.k.state.borrow_mut().ports.iter_mut() {
            p.up = true;
        }
        for _ in 0..3 {
            let n = w.queue.len();
            w.deliver(n);
            w.now += 120_000;
            w.run_due(&sources);
        }
        // The directly connected subsystem is connected (its port is never taken down).
        if configured[3] {
            let connected = w.k.controllers().iter().any(|c| {
                !c.is_discovery()
                    && c.traddr == DIRECT.0
                    && c.subsysnqn == DIRECT.1
                    && !c.state.is_going_away()
            });
            assert!(
                connected,
                "[Subsystem] {} at {} not connected",
                DIRECT.1, DIRECT.0
            );
        }
        let wanted: Vec<&str> = PORTS
            .iter()
            .zip(configured)
            .filter(|(_, c)| *c)
            .map(|(a, _)| *a)
            .collect();
        for a in wanted {
            let served = w.k.controllers().iter().any(|c| {
                c.is_discovery()
                    && c.traddr == a
                    && !c.state.is_going_away()
                    && c.claimed_by.is_none()
            });
            assert!(served, "no discovery controller at configured {a}");
        }
    } else if rng.below(2) == 0 {
        let n = w.queue.len();
        w.deliver(n);
    }
    w.engine.handle(Input::Terminate, w.now, &mut w.out);
    w.perform();
    assert!(w.exited, "no Exit after Terminate with nothing running");
    w.check();
    let left = w.our_dcs();
    assert!(
        left.is_empty(),
        "our discovery controllers left after SIGTERM: {left:?}"
    );
    w.runs
}
