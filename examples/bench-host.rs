//! Host half of `make bench`: heap allocations per uevent and the AEN storm, against the real engine.
//!
//! Feeds the uevents captured from the VM (tests/data/uevent-*.bin) through the same steps the daemon
//! takes for a message from its socket: `Uevent::parse`, `classify`, the event turned into an engine
//! input, `Engine::handle`. A counting global allocator sees every heap allocation made on the way.
//! Prints `bench KEY VALUE` lines for bench/report; asserts nothing about time.
//!
//! Run: `cargo run --release --example bench-host`.
//!
//! # References
//! - src/daemon.rs `on_uevent`, `input_of` and `run_due_work`: the path imitated here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nvme_monitor::engine::{Action, Engine, EngineConfig, Input, Outcome};
use nvme_monitor::sysfs::instance_of;
use nvme_monitor::table::{DiscoveryCtrl, OptsRef, Owner};
use nvme_monitor::uevent::{AEN_DISCOVERY_LOG_CHANGE, Classified, Event, Uevent, classify};

/// Counts allocations (and reallocations, which may move) and passes them on to the system allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// The crate root denies unsafe code; this separate example crate needs it only because
// `GlobalAlloc` is an unsafe trait. Every method forwards to `System` unchanged.
#[allow(unsafe_code)]
// SAFETY: each method forwards its arguments unchanged to `System`, which upholds the GlobalAlloc
// contract; the counter is an atomic and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: ptr came from this allocator, which is System underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator, which is System underneath.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

const ALL: &[u8] = include_bytes!("../tests/data/uevent-all.bin");
const AEN: &[u8] = include_bytes!("../tests/data/uevent-aen.bin");
const SINGLES: &[&[u8]] = &[
    AEN,
    include_bytes!("../tests/data/uevent-connected.bin"),
    include_bytes!("../tests/data/uevent-connected-loop.bin"),
    include_bytes!("../tests/data/uevent-ctrl-add.bin"),
    include_bytes!("../tests/data/uevent-ctrl-remove.bin"),
    include_bytes!("../tests/data/uevent-fc-nvmediscovery.bin"),
    include_bytes!("../tests/data/uevent-rediscover.bin"),
    include_bytes!("../tests/data/uevent-unrelated.bin"),
];

/// The payloads of uevent-all.bin (each preceded by its length, u32 little endian) and the single files.
fn payloads() -> Vec<&'static [u8]> {
    let mut out: Vec<&'static [u8]> = SINGLES.to_vec();
    let mut rest = ALL;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (payload, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
        out.push(payload);
        rest = tail;
    }
    out
}

/// The engine input the daemon makes of an event (`Daemon::input_of` with `--persistent`), except
/// that `connected` is taken to be a discovery controller without reading sysfs.
fn input_of(ev: &Event) -> Option<Input> {
    match *ev {
        Event::Aen { ctrl, addr, aen } if aen == AEN_DISCOVERY_LOG_CHANGE => {
            Some(Input::LogChanged {
                instance: instance_of(ctrl)?,
                ino: 0,
                addr: addr.to_addr().ok()?,
            })
        }
        Event::Rediscover { ctrl, addr } => Some(Input::LogChanged {
            instance: instance_of(ctrl)?,
            ino: 0,
            addr: addr.to_addr().ok()?,
        }),
        Event::Connected { ctrl, addr } => Some(Input::DcLive {
            instance: instance_of(ctrl)?,
            ino: 0,
            addr: addr.to_addr().ok()?,
        }),
        Event::CtrlRemove { ctrl, .. } => Some(Input::CtrlRemoved {
            instance: instance_of(ctrl)?,
            current: None,
        }),
        Event::FcDiscovery {
            host_traddr,
            traddr,
        } => nvme_monitor::addr::TransportAddr::new(
            nvme_monitor::addr::Transport::Fc,
            traddr,
            "",
            host_traddr,
            "",
        )
        .ok()
        .map(|addr| Input::FcDiscovery { addr }),
        _ => None,
    }
}

/// One message from the socket, as `Daemon::on_uevent` handles it; true when it reached the engine.
fn feed(engine: &mut Engine, msg: &[u8], now: u64, out: &mut Vec<Action>) -> bool {
    let Ok(u) = Uevent::parse(msg) else {
        return false;
    };
    let Classified::Event(ev) = classify(&u) else {
        return false;
    };
    let Some(input) = input_of(&ev) else {
        return false;
    };
    engine.handle(input, now, out);
    out.clear();
    true
}

/// Run every queued discovery to a successful end, as if each found its controller up.
fn settle(engine: &mut Engine, now: u64, out: &mut Vec<Action>) -> u64 {
    let mut runs = 0;
    while let Some(id) = engine.next_work(now) {
        runs += 1;
        let dc = engine.slot(id).and_then(|s| s.dc);
        let outcome = Outcome {
            ok: true,
            dc,
            referrals: Vec::new(),
            failed_entries: Vec::new(),
            skipped_entries: Vec::new(),
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        };
        engine.discovery_done(id, outcome, now, out);
        out.clear();
    }
    runs
}

fn allocations_per_event() {
    let msgs = payloads();
    let cfg = EngineConfig {
        persistent: true,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    let mut out = Vec::with_capacity(16);
    // Warm-up pass: every address the capture names gets its slot, as in a daemon that has run a while.
    for m in &msgs {
        feed(&mut engine, m, 0, &mut out);
    }
    settle(&mut engine, 0, &mut out);
    const ROUNDS: u64 = 100;
    let (mut events, mut handled) = (0u64, 0u64);
    let before = allocs();
    for round in 0..ROUNDS {
        for m in &msgs {
            events += 1;
            handled += u64::from(feed(&mut engine, m, round, &mut out));
        }
    }
    let total = allocs() - before;
    println!("bench alloc.events {events}");
    println!("bench alloc.handled {handled}");
    println!("bench alloc.total {total}");
    println!("bench alloc.per_event {:.3}", total as f64 / events as f64);
    println!("bench alloc.slots {}", engine.table().len());
}

/// User+system CPU time of this process in clock ticks, from /proc/self/stat.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (proc(5)).
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// 10,000 AENs for one address while its discovery runs: how many discoveries follow, and the cost.
fn storm() {
    const EVENTS: u64 = 10_000;
    const ROUNDS: u64 = 50;
    let u = Uevent::parse(AEN).expect("uevent-aen.bin parses");
    let Classified::Event(ev) = classify(&u) else {
        panic!("uevent-aen.bin is not an event")
    };
    let Some(Input::LogChanged { instance, addr, .. }) = input_of(&ev) else {
        panic!("uevent-aen.bin is not a discovery log change")
    };
    let cfg = EngineConfig {
        persistent: true,
        ..EngineConfig::default()
    };
    let mut out = Vec::with_capacity(16);
    let (mut runs_during, mut runs_after, mut events) = (0u64, 0u64, 0u64);
    let mut ns = 0u128;
    let ticks0 = cpu_ticks();
    for _ in 0..ROUNDS {
        let mut engine = Engine::new(cfg);
        let dc = DiscoveryCtrl {
            instance,
            owner: Owner::Ours,
            cntlid: 1,
            subsysnqn: Default::default(),
            ino: 1,
        };
        engine.handle(
            Input::Configured {
                addr,
                opts: OptsRef::Global,
            },
            0,
            &mut out,
        );
        let id = engine.next_work(0).expect("the configured address is due");
        let t = Instant::now();
        for _ in 0..EVENTS {
            feed(&mut engine, AEN, 1, &mut out);
            // The daemon asks for work after every drained batch; ask after every event instead.
            runs_during += u64::from(engine.next_work(1).is_some());
            events += 1;
        }
        ns += t.elapsed().as_nanos();
        let outcome = Outcome {
            ok: true,
            dc: Some(dc),
            referrals: Vec::new(),
            failed_entries: Vec::new(),
            skipped_entries: Vec::new(),
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        };
        engine.discovery_done(id, outcome, 2, &mut out);
        out.clear();
        runs_after += settle(&mut engine, 3, &mut out);
    }
    let ticks = cpu_ticks() - ticks0;
    println!("bench storm.events {EVENTS}");
    println!("bench storm.rounds {ROUNDS}");
    println!("bench storm.runs_during {}", runs_during / ROUNDS);
    println!("bench storm.runs_after {}", runs_after / ROUNDS);
    println!("bench storm.ns_per_event {:.0}", ns as f64 / events as f64);
    println!("bench storm.cpu_ticks_total {ticks}");
}

fn main() {
    // At the daemon's default level: a log record written on the way counts too.
    allocations_per_event();
    // Quiet, so that the time per event is the engine's and not the terminal's.
    nvme_monitor::log::set_level(nvme_monitor::log::Level::Warn);
    storm();
}
