//! The shell: owns the file descriptors, runs the poll loop, performs what the engine decides.
//!
//! Startup order (as mdevd does it): block signals and open the signalfd, bind the uevent socket,
//! THEN scan sysfs and read the configuration, so no event slips between the scan and listening.
//! Discovery runs synchronously; uevents that arrive meanwhile wait in the socket's large receive
//! buffer and are drained (and coalesced by the engine) after each run.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, poll};

use crate::cli::{self, Args};
use crate::config::DiscoverySource;
use crate::discover;
use crate::engine::{Action, Engine, EngineConfig, Input};
use crate::error::Result;
use crate::handoff::{StateFile, owned_entries};
use crate::kernel::{Kernel, RealKernel};
use crate::netlink::{RecvResult, UeventSocket};
use crate::ownership;
use crate::settings::{Loaded, load_config};
use crate::state::{self, StateEntry};
use crate::sys::SignalFd;
use crate::sysfs::CtrlState;
use crate::table::{DiscoveryCtrl, Millis, OptsRef, Origin, Owner};
use crate::udev::UdevMask;
use crate::uevent::{self, Classified};

/// Largest uevent the kernel sends (UEVENT_BUFFER_SIZE) plus headroom.
const UEVENT_MAX: usize = 8192;

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal,
    OnceDone,
}

struct Shell {
    args: Args,
    started: Instant,
    uevents: UeventSocket,
    signals: SignalFd,
    kernel: RealKernel,
    hostnqn: String,
    hostid: Option<String>,
    sources: Vec<DiscoverySource>,
    /// nvme-fabrics.conf `[Subsystem]` keys, for a discovery log entry naming that subsystem.
    subsystem_keys: Vec<crate::settings::SubsystemKeys>,
    /// `rd.nonvmf`: listen for signals only.
    nonvmf: bool,
    /// `rd.nvmf.nonbft` (with `--cmdline`): the NBFT is not read.
    nonbft: bool,
    engine: Engine,
    actions: Vec<Action>,
    buf: Vec<u8>,
    stop: Option<Stop>,
    udev_mask: Option<UdevMask>,
    state_file: StateFile,
    early_signals: RefCell<VecDeque<i32>>,
    /// The state directory's instance lock, held (never read) for the process lifetime; `None`
    /// for `--once` and `--dry-run`, which never hold it, or when it could not be taken.
    _lock: Option<crate::statedir::InstanceLock>,
    /// Another daemon holds the state directory: this is a guest beside it.
    beside_daemon: bool,
    /// Deleting one of our discovery controllers failed at exit: keep the state file listing it.
    delete_failed: bool,
    /// FC controllers went: ask the FC transport to replay its port events once the socket is
    /// drained (one write for any number of drops, paced).
    fc_replay: crate::events::FcReplayPacer,
    /// nvme-cli 3's exclusion list, re-read (when a stat changed) before every run and retry.
    exclusions: crate::exclusions::ExclusionFiles,
    ready: bool,
    /// What the current discovery run or entry retry saw, for the status file.
    report: RefCell<discover::Report>,
    /// Per address: how its last run went and what it connected.
    book: crate::publish::Book,
    /// `None` for a guest (`--once`, `--dry-run`): the status file is the daemon's.
    publisher: Option<crate::publish::Publisher>,
    /// The Unix time in ms at `started`: engine time to wall time, from one fixed base.
    base_ms: u64,
    daemon_info: crate::status::DaemonInfo,
    /// The firmware's boot paths (NBFT), in `sources` from `nbft_from` on, and for each the
    /// address it was given to the engine with once its network was ready (`None`: waiting).
    nbft: Vec<crate::nbft_paths::NbftPath>,
    nbft_fed: Vec<Option<crate::addr::TransportAddr>>,
    nbft_from: usize,
    /// Links and addresses, followed on an rtnetlink socket in the poll loop.
    net: crate::netwatch::NetWatch,
    net_changes: Vec<crate::rtnetlink::NetChange>,
    /// The network view was full once: said once.
    net_full_logged: bool,
}

/// Run the daemon; returns the process exit code.
pub fn run(args: Args) -> i32 {
    match Shell::start(args) {
        Ok(mut shell) => shell.main_loop(),
        Err(e) => {
            error!("{e}");
            cli::EXIT_FATAL
        }
    }
}

impl Shell {
    fn start(args: Args) -> Result<Shell> {
        let signals = SignalFd::new()?;
        let uevents = UeventSocket::open(args.uevent_buffer as usize)?;
        let (lock, beside_daemon) = take_lock(&args)?;
        // A guest: the state file and what a daemon owns are not ours to touch.
        let guest = args.once || args.dry_run;
        let registry = crate::registry::Registry::new(
            &args.run_root,
            &args.sysfs,
            &args.devfs,
            &args.owner,
            args.dry_run,
        );
        let kernel = RealKernel::new(&args.sysfs, &args.devfs, registry);
        let loaded = load_config(&args);
        if loaded.has_secrets(&args.opts) {
            crate::secret::keep_out_of_core_dumps();
        }
        let Loaded {
            hostnqn,
            hostid,
            sources,
            nonvmf,
            nonbft,
            subsystem_keys,
        } = loaded;
        let engine = Engine::new(EngineConfig {
            persistent: args.persistent,
            // --once leaves what it set up, as `nvme connect-all -p` does.
            keep: args.keep || args.once,
            prune_grace: u64::from(args.prune_grace) * 1000,
            epcsd_poll: u64::from(args.epcsd_poll_interval) * 60_000,
            ..EngineConfig::default()
        });
        let (args_state_dir, args_dry_run) = (args.state_dir.clone(), args.dry_run);
        let args_etc_nvme = args.etc_nvme.clone();
        let started = Instant::now();
        let base_ms = crate::status::unix_now_ms();
        let daemon_info = crate::status::DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            started: base_ms / 1000,
            options: crate::status::Options::from_args(&args),
            ..Default::default()
        };
        let publisher = (!guest).then(|| crate::publish::Publisher::new(args.state_dir.clone()));
        let mut shell = Shell {
            args,
            started,
            report: RefCell::default(),
            book: Default::default(),
            publisher,
            base_ms,
            daemon_info,
            uevents,
            signals,
            kernel,
            hostnqn,
            hostid,
            sources,
            subsystem_keys,
            nonvmf,
            nonbft,
            engine,
            actions: Vec::with_capacity(16),
            buf: vec![0; UEVENT_MAX],
            stop: None,
            udev_mask: None,
            early_signals: RefCell::new(VecDeque::new()),
            _lock: lock,
            beside_daemon,
            delete_failed: false,
            fc_replay: Default::default(),
            exclusions: crate::exclusions::ExclusionFiles::new(&args_etc_nvme),
            state_file: StateFile {
                dir: args_state_dir,
                dry_run: args_dry_run || guest,
                failed: Cell::new(false),
            },
            ready: false,
            nbft: Vec::new(),
            nbft_fed: Vec::new(),
            nbft_from: 0,
            net: crate::netwatch::NetWatch::open(),
            net_changes: Vec::new(),
            net_full_logged: false,
        };
        if !shell.kernel.fabrics_present() {
            warn!(
                "{} is absent (nvme-fabrics module not loaded): listening, discovery starts when it appears",
                shell.args.devfs.join("nvme-fabrics").display()
            );
        }
        if shell.nonvmf {
            info!(
                "rd.nonvmf: NVMe over Fabrics disabled on the kernel command line: no discovery, no connects, no event handling"
            );
            return Ok(shell);
        }
        if !guest {
            shell.adopt_from_state_file();
        }
        // Our registry entries whose controller went while no instance ran (a crash, a kernel
        // that removed it during the pivot): nobody else removes them where udev does not run.
        let live = shell.scan_existing();
        let swept = shell.kernel.registry.sweep(&live);
        if swept > 0 {
            info!("removed {swept} registry entries of ours whose controllers are gone");
        }
        if shell.args.autoconnect
            && !shell.args.no_mask_udev
            && !shell.args.once
            && !shell.args.dry_run
        {
            match UdevMask::install(&shell.args.run_root, &shell.args.state_dir) {
                Ok(m) => shell.udev_mask = Some(m),
                Err(e) => warn!("{e}; nvme-cli's autoconnect rule may race us"),
            }
        }
        shell.load_nbft();
        shell.configure_sources();
        let mut changes = std::mem::take(&mut shell.net_changes);
        shell.net.wait_synced(2_000, &mut changes);
        if changes.contains(&crate::rtnetlink::NetChange::Full) {
            shell.net_full_logged = true;
            warn!(
                "more than {} links or {} addresses: the ones past that are not followed, and a path through them waits",
                crate::rtnetlink::MAX_LINKS,
                crate::rtnetlink::MAX_ADDRS
            );
        }
        changes.clear();
        shell.net_changes = changes;
        shell.feed_ready_nbft_paths();
        shell.log_waiting_nbft_paths();
        // A replay makes every FC port pair announce itself again: a guest must not stir up a
        // running daemon (or nvme-cli's rule), and a dry run changes nothing.
        let replay = if guest {
            Ok(false)
        } else {
            shell.kernel.sysfs.fc_replay()
        };
        match replay {
            Ok(true) => debug!("asked the kernel to replay FC nvmediscovery events"),
            Ok(false) => {}
            Err(e) => warn!("{e}"),
        }
        shell.perform_actions();
        Ok(shell)
    }

    /// Adopt the discovery controllers an earlier instance handed over, each only if sysfs still shows
    /// the same controller; anything doubtful is dropped (never adopted, so never deleted by us).
    fn adopt_from_state_file(&mut self) {
        let dir = &self.args.state_dir;
        let text = match state::read(dir) {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => {
                warn!("{e}: rebuilding from sysfs");
                return;
            }
        };
        let entries = match state::parse(&text) {
            Ok((entries, warnings)) => {
                for w in warnings {
                    warn!("{}/{}: {w}: entry dropped", dir.display(), state::FILE_NAME);
                }
                entries
            }
            Err(why) => {
                warn!(
                    "{}/{}: {why}: rebuilding from sysfs",
                    dir.display(),
                    state::FILE_NAME
                );
                self.actions.push(Action::StateChanged);
                return;
            }
        };
        let mut dropped = false;
        let (creating, entries): (Vec<StateEntry>, Vec<StateEntry>) =
            entries.into_iter().partition(|e| e.creating);
        for e in entries {
            let now = self
                .kernel
                .controller(&format!("nvme{}", e.instance))
                .map_err(|err| err.to_string());
            match ownership::adopt(&e, now, &self.hostnqn) {
                Ok((addr, dc)) => {
                    info!(
                        "adopted discovery controller nvme{} at {} from the previous instance",
                        e.instance, addr
                    );
                    if let Err(err) = self.kernel.registry.register_adopted(dc.instance) {
                        warn!("{err}");
                    }
                    let now = self.now();
                    self.engine.handle(
                        Input::Existing {
                            addr,
                            dc,
                            origin: e.origin,
                        },
                        now,
                        &mut self.actions,
                    );
                    // Always rewritten: the entry may gain its identity or a new cntlid.
                    self.actions.push(Action::StateChanged);
                }
                Err(why) => {
                    warn!("not adopting nvme{} at {}: {why}", e.instance, e.addr);
                    dropped = true;
                }
            }
        }
        // The previous instance died while creating a controller: find what the kernel made.
        let ctrls = if creating.is_empty() {
            Vec::new()
        } else {
            self.kernel.controllers()
        };
        for e in creating {
            let claimed: Vec<u64> = self.engine.owned().map(|(_, d, _)| d.ino).collect();
            self.actions.push(Action::StateChanged);
            match ownership::adopt_creating(&e, &ctrls, &claimed, &self.hostnqn) {
                Some((addr, dc)) => {
                    info!(
                        "adopted discovery controller nvme{} at {addr}: the previous instance was creating it when it stopped",
                        dc.instance
                    );
                    if let Err(err) = self.kernel.registry.register_adopted(dc.instance) {
                        warn!("{err}");
                    }
                    let now = self.now();
                    let origin = e.origin;
                    self.engine.handle(
                        Input::Existing { addr, dc, origin },
                        now,
                        &mut self.actions,
                    );
                }
                None => debug!(
                    "the previous instance was creating a discovery controller at {}: the kernel made none",
                    e.addr
                ),
            }
        }
        if dropped {
            self.actions.push(Action::StateChanged);
        }
    }

    fn write_state(&self) {
        self.state_file
            .write(owned_entries(&self.engine, &self.hostnqn, None));
    }

    /// After the startup discovery pass: tell the service manager and whoever waits on the ready file.
    fn announce_ready(&mut self) {
        if self.ready || self.args.once || self.beside_daemon {
            return;
        }
        self.ready = true;
        match crate::notify::sd_notify("READY=1") {
            Ok(true) => debug!("sent READY=1 to the service manager"),
            Ok(false) => {}
            Err(e) => warn!("{e}"),
        }
        if let Err(e) = crate::notify::write_ready_file(&self.args.state_dir) {
            warn!("{e}");
        }
        info!(
            "startup discovery done: {} address(es) tracked",
            self.engine.table().len()
        );
    }

    fn now(&self) -> Millis {
        self.started.elapsed().as_millis() as Millis
    }

    /// Discovery controllers that exist already: use them (foreign: never deleted by us).
    /// Returns the instance numbers of every fabrics controller the scan saw, so that startup
    /// reads sysfs once for this and the registry sweep.
    fn scan_existing(&mut self) -> Vec<u32> {
        let ctrls = self.kernel.controllers();
        let instances = ctrls.iter().map(|c| c.instance).collect();
        for c in ctrls {
            if !c.is_discovery() || c.state != CtrlState::Live {
                continue;
            }
            if self.engine.table().find_dc(c.instance, c.ino).is_some() {
                continue; // adopted from the state file, or already tracked
            }
            if let Some(owner) = &c.claimed_by {
                info!(
                    "discovery controller {} is registered to {owner}: not ours to use",
                    c.name
                );
                continue;
            }
            let Some(mut addr) = c.to_addr() else {
                continue;
            };
            if !c.hostnqn.is_empty() && c.hostnqn != self.hostnqn {
                addr.hostnqn = crate::addr::Nqn::new(&c.hostnqn).unwrap_or_default();
            }
            let dc = ownership::dc_of(&c, Owner::Foreign);
            info!("found discovery controller {} at {}", c.name, addr);
            if self.args.persistent {
                self.engine.handle(
                    Input::Existing {
                        addr,
                        dc,
                        origin: Origin::Startup,
                    },
                    self.now(),
                    &mut self.actions,
                );
            }
        }
        instances
    }

    fn main_loop(&mut self) -> i32 {
        loop {
            self.run_due_work();
            if self.stop.is_some() {
                break;
            }
            if self.args.once && !self.engine.has_due_work(self.now()) {
                self.stop = Some(Stop::OnceDone);
                break;
            }
            self.announce_ready();
            self.replay_fc_if_due();
            self.publish_status();
            let now = self.now();
            let deadline = match (self.engine.next_deadline(), self.fc_replay.deadline(now)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = deadline.map(|at| {
                let ms = at.saturating_sub(self.now());
                rustix::event::Timespec {
                    tv_sec: (ms / 1000) as i64,
                    tv_nsec: ((ms % 1000) * 1_000_000) as i64,
                }
            });
            let net_fd = self.net.fd();
            let mut fds = [
                PollFd::new(&self.uevents, PollFlags::IN),
                PollFd::new(&self.signals, PollFlags::IN),
                match &net_fd {
                    Some(fd) => PollFd::new(fd, PollFlags::IN),
                    None => PollFd::from_borrowed_fd(
                        std::os::fd::AsFd::as_fd(&self.signals),
                        PollFlags::empty(),
                    ),
                },
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    error!("unable to poll: {e}: exiting");
                    let now = self.now();
                    self.engine.handle(Input::Terminate, now, &mut self.actions);
                    self.perform_actions();
                    self.shutdown();
                    return cli::EXIT_FATAL;
                }
            }
            // Uevents first: a remove that happened before the signal must be known before the
            // teardown decides what to delete.
            self.drain_uevents();
            self.drain_network();
            self.drain_signals();
        }
        self.shutdown();
        self.exit_code()
    }

    /// Rewrite the status file if what it shows changed (see [`crate::publish`]).
    fn publish_status(&mut self) {
        if self.publisher.is_none() {
            return;
        }
        self.book.retain(&self.engine);
        // Engine time does not move with the wall clock (an NTP step after start, a suspend):
        // when they drift apart, times are converted from where the wall clock is now.
        let wall = crate::status::unix_now_ms();
        let now = self.now();
        if wall.abs_diff(self.base_ms.saturating_add(now)) > 2_000 {
            self.base_ms = wall.saturating_sub(now);
        }
        let snap =
            crate::publish::snapshot(&self.engine, &self.book, self.base_ms, &self.daemon_info);
        if let Some(p) = self.publisher.as_mut() {
            p.publish(snap, wall / 1000);
        }
    }

    fn shutdown(&mut self) {
        if let Some(p) = &self.publisher {
            p.remove();
        }
        let keep = self.args.keep || self.args.once;
        if let Some(mask) = self.udev_mask.take() {
            if !keep {
                mask.remove();
            }
        }
        if !keep && !self.args.dry_run && !self.delete_failed && self.engine.owned().count() == 0 {
            let _ = state::remove(&self.args.state_dir);
        }
        // Only a ready file holding our pid is removed: a guest's exit leaves a daemon's alone.
        crate::notify::remove_ready_file(&self.args.state_dir);
    }

    fn exit_code(&self) -> i32 {
        let may_fail = |opts: OptsRef| match opts {
            OptsRef::Source(i) => (i as usize)
                .checked_sub(self.nbft_from)
                .and_then(|n| self.nbft.get(n))
                .is_some_and(|p| p.unavailable),
            OptsRef::Global => false,
        };
        let waiting = self
            .nbft
            .iter()
            .zip(&self.nbft_fed)
            .filter(|(p, fed)| fed.is_none() && !p.unavailable)
            .count();
        let failed = self
            .engine
            .table()
            .iter()
            .filter(|(_, s)| s.failures > 0 && !may_fail(s.opts))
            .count()
            + self.engine.entry_retries().count()
            + waiting;
        if waiting > 0 && self.stop == Some(Stop::OnceDone) {
            warn!(
                "{waiting} NBFT path(s) not connected: their interface or address was not there (--once does not wait)"
            );
        }
        match self.stop {
            Some(Stop::OnceDone) if failed > 0 => {
                warn!("{failed} address(es) or subsystem(s) failed");
                cli::EXIT_DISCOVERY_FAILED
            }
            _ => cli::EXIT_OK,
        }
    }

    /// Run discoveries one at a time until none is due, draining events between runs.
    fn run_due_work(&mut self) {
        while self.stop.is_none() {
            let now = self.now();
            self.engine.expire(now, &mut self.actions);
            self.perform_actions();
            if let Some(id) = self.engine.next_work(now) {
                self.exclusions.current();
                self.discover(id);
            } else if let Some((rid, retry)) = self.engine.next_entry_retry(now) {
                self.exclusions.current();
                self.report.take();
                let opts = self.engine.slot(retry.slot).map(|s| s.opts);
                // An entry retry connects I/O controllers only: no discovery controller is made.
                let never = |_: &DiscoveryCtrl| {};
                let never_creating = |_: &crate::addr::TransportAddr, _: Option<u64>| {};
                let stop = || self.stop_requested();
                let ctx = self.context(&never, &never_creating, &stop, &[]);
                let result =
                    discover::retry_entry(&ctx, &retry.key, opts.unwrap_or(OptsRef::Global));
                let now = self.now();
                self.engine.entry_retry_done(rid, result, now);
                let report = self.report.take();
                if let Some(s) = self.engine.slot(retry.slot) {
                    self.book.entry_connected(&s.addr, report.connected);
                }
            } else {
                break;
            }
            self.perform_actions();
            self.drain_uevents();
            self.drain_network();
            self.drain_signals();
            self.publish_status();
        }
    }

    /// What a discovery run needs of the shell.
    fn context<'a>(
        &'a self,
        on_created: &'a dyn Fn(&DiscoveryCtrl),
        on_creating: &'a dyn Fn(&crate::addr::TransportAddr, Option<u64>),
        stop_requested: &'a dyn Fn() -> bool,
        waiting_entries: &'a [crate::engine::EntryKey],
    ) -> discover::Context<'a> {
        discover::Context {
            exclusions: self.exclusions.list(),
            waiting_entries,
            on_created,
            on_creating,
            stop_requested,
            kernel: &self.kernel,
            hostnqn: &self.hostnqn,
            hostid: self.hostid.as_deref(),
            global_opts: &self.args.opts,
            sources: &self.sources,
            subsystem_keys: &self.subsystem_keys,
            report: &self.report,
            autoconnect: self.args.autoconnect,
            nbft_from: self.nbft_from,
            persistent: self.args.persistent,
            dry_run: self.args.dry_run,
        }
    }

    /// One discovery run for slot `id`, its result handed to the engine.
    fn discover(&mut self, id: crate::table::SlotId) {
        let Some(slot) = self.engine.slot(id).copied() else {
            return;
        };
        debug!("discovery {} at {}", slot.discoveries + 1, slot.addr);
        // Recorded the moment it exists, so a SIGKILL during the rest of the run leaks nothing.
        let created = Cell::new(false);
        let record = |dc: &DiscoveryCtrl| {
            created.set(true);
            self.state_file.write(owned_entries(
                &self.engine,
                &self.hostnqn,
                Some((&slot.addr, dc, slot.origin)),
            ))
        };
        // The intent, recorded just before the connect (and dropped again if it fails).
        let creating = |addr: &crate::addr::TransportAddr, newest: Option<u64>| {
            let mut entries = owned_entries(&self.engine, &self.hostnqn, None);
            if let Some(newest) = newest {
                entries.push(crate::handoff::creating_entry(
                    addr,
                    &self.hostnqn,
                    &slot,
                    newest,
                ));
            }
            self.state_file.write(entries)
        };
        let stop = || self.stop_requested();
        let waiting = self.engine.entries_waiting(id, self.now());
        self.report.take();
        let outcome = discover::run(&self.context(&record, &creating, &stop, &waiting), &slot);
        let now = self.now();
        let report = self.report.take();
        let run = crate::publish::LastRun {
            at: now,
            ok: outcome.ok,
            error: report.error_text(),
        };
        self.book.run_done(
            &slot.addr,
            &slot.subsystem,
            run,
            report.read_log,
            report.connected,
        );
        // The result goes in before the queued events, so the engine knows the controller we just
        // created when its own `connected` event is drained.
        self.engine
            .discovery_done(id, outcome, now, &mut self.actions);
        if created.get() {
            // A temporary controller made and deleted within the run leaves no trace in the
            // engine, but the state file listed it from the moment it existed.
            self.actions.push(Action::StateChanged);
        }
    }

    /// Signals read while a discovery ran (to see whether to stop early) come first.
    fn next_signal(&self) -> crate::error::Result<Option<i32>> {
        match self.early_signals.borrow_mut().pop_front() {
            Some(sig) => Ok(Some(sig)),
            None => self.signals.read(),
        }
    }

    /// Asked between the entries of a long discovery log: has SIGTERM or SIGINT come?
    fn stop_requested(&self) -> bool {
        while let Ok(Some(sig)) = self.signals.read() {
            self.early_signals.borrow_mut().push_back(sig);
        }
        self.early_signals
            .borrow()
            .iter()
            .any(|&s| s == libc::SIGTERM || s == libc::SIGINT)
    }

    /// Hand every configured address to the engine (see [`crate::engine::configured_inputs`]).
    fn configure_sources(&mut self) {
        let now = self.now();
        let configured = &self.sources[..self.nbft_from.min(self.sources.len())];
        for input in crate::engine::configured_inputs(configured, &self.hostnqn) {
            self.engine.handle(input, now, &mut self.actions);
        }
    }

    /// Read the firmware's boot tables (unless `--no-nbft`) and put their paths after the
    /// configured sources; they reach the engine once their network is ready.
    fn load_nbft(&mut self) {
        self.nbft_from = self.sources.len();
        if !self.args.nbft {
            return;
        }
        if self.nonbft {
            info!("rd.nvmf.nonbft: the NBFT is not read");
            return;
        }
        let dir = self
            .args
            .nbft_path
            .clone()
            .unwrap_or_else(|| self.args.sysfs.join("firmware/acpi/tables"));
        let tables = match crate::nbft_show::load(&dir) {
            Ok(t) => t,
            Err(e) => {
                error!("{e}: the NBFT's paths are not connected");
                return;
            }
        };
        let mut paths = crate::nbft_paths::Paths::default();
        for t in &tables {
            match &t.result {
                Ok(nbft) => {
                    info!(
                        "{}: {} HFI(s), {} SSNS, {} discovery descriptor(s)",
                        t.filename,
                        nbft.hfis.len(),
                        nbft.ssns.len(),
                        nbft.discovery.len()
                    );
                    crate::nbft_paths::paths_of(
                        &t.filename,
                        nbft,
                        self.args.opts.hostnqn.is_some(),
                        self.args.opts.hostid.is_some(),
                        &mut paths,
                    )
                }
                Err(e) => error!("{e}: its paths are not connected"),
            }
        }
        for why in &paths.skipped {
            warn!("{why}");
        }
        if let Some(nqn) = &paths.hostnqn {
            if *nqn != self.hostnqn {
                info!(
                    "NBFT host NQN {nqn} (host ID {}) for its paths; {} for the rest",
                    paths.hostid.as_deref().unwrap_or("not set"),
                    if self.hostnqn.is_empty() {
                        "the kernel's default"
                    } else {
                        &self.hostnqn
                    }
                );
            }
        }
        for p in &paths.paths {
            let what = if p.source.subsystem.is_empty() {
                "discovery controller".to_string()
            } else {
                p.source.subsystem.to_string()
            };
            info!(
                "{}: {what} at {} from the interface with MAC {}{}{}{}",
                p.label,
                p.source.addr,
                crate::nbft_show::mac_text(&p.hfi.mac),
                if p.hfi.vlan != 0 {
                    format!(" VLAN {}", p.hfi.vlan)
                } else {
                    String::new()
                },
                p.hfi
                    .ip
                    .map(|ip| format!(" ({ip})"))
                    .unwrap_or_else(|| " (DHCP)".into()),
                if p.unavailable {
                    "; marked unavailable by the firmware: a failure is no error"
                } else {
                    ""
                }
            );
        }
        self.sources
            .extend(paths.paths.iter().map(|p| p.source.clone()));
        self.nbft_fed = vec![None; paths.paths.len()];
        self.nbft = paths.paths;
    }

    /// Give the engine every NBFT path whose interface now holds its address.
    fn feed_ready_nbft_paths(&mut self) {
        use crate::nbft_paths::Readiness;
        let now = self.now();
        for i in 0..self.nbft.len() {
            if self.nbft_fed[i].is_some() {
                continue;
            }
            let p = &self.nbft[i];
            let ifname = match crate::nbft_paths::readiness(&p.hfi, &self.net.view) {
                Readiness::Ready { ifname } => ifname,
                Readiness::NoInterface | Readiness::NoAddress { .. } => continue,
            };
            let Some(iface) = crate::addr::FixedStr::new(&ifname) else {
                warn!(
                    "{}: interface name '{ifname}' is too long: not connected",
                    p.label
                );
                continue;
            };
            let mut addr = p.source.addr.with_default_host(&self.hostnqn);
            addr.host_iface = iface;
            info!("{}: {ifname} is ready: connecting from it", p.label);
            let input = Input::Nbft {
                addr,
                subsystem: p.source.subsystem,
                opts: OptsRef::Source((self.nbft_from + i) as u16),
            };
            self.nbft_fed[i] = Some(addr);
            self.engine.handle(input, now, &mut self.actions);
        }
    }

    /// Say once, after the startup pass, which NBFT paths still wait on their network.
    fn log_waiting_nbft_paths(&self) {
        use crate::nbft_paths::Readiness;
        for (p, fed) in self.nbft.iter().zip(&self.nbft_fed) {
            if fed.is_some() {
                continue;
            }
            let mac = crate::nbft_show::mac_text(&p.hfi.mac);
            match crate::nbft_paths::readiness(&p.hfi, &self.net.view) {
                Readiness::NoInterface => info!(
                    "{}: waiting for an interface with MAC {mac}{}",
                    p.label,
                    if p.hfi.vlan != 0 {
                        format!(" on VLAN {}", p.hfi.vlan)
                    } else {
                        String::new()
                    }
                ),
                Readiness::NoAddress { ifname } => info!(
                    "{}: waiting for {} on {ifname}",
                    p.label,
                    p.hfi
                        .ip
                        .map_or_else(|| "an address".to_string(), |ip| ip.to_string())
                ),
                Readiness::Ready { .. } => {}
            }
        }
    }

    /// The network moved: NBFT paths whose interface is ready now are given to the engine, and
    /// every slot that connects through an interface or address that became ready stops
    /// waiting out its backoff.
    fn drain_network(&mut self) {
        let mut changes = std::mem::take(&mut self.net_changes);
        changes.clear();
        self.net.drain(&mut changes);
        if !changes.is_empty() && !self.nonvmf {
            let now = self.now();
            for c in &changes {
                let (ifindex, host_traddr) = match *c {
                    crate::rtnetlink::NetChange::AddrReady { ifindex, addr } => {
                        (ifindex, Some(addr))
                    }
                    crate::rtnetlink::NetChange::LinkUp { ifindex } => (ifindex, None),
                    crate::rtnetlink::NetChange::Full => {
                        if !self.net_full_logged {
                            self.net_full_logged = true;
                            warn!(
                                "more than {} links or {} addresses: the ones past that are not followed, and a path through them waits",
                                crate::rtnetlink::MAX_LINKS,
                                crate::rtnetlink::MAX_ADDRS
                            );
                        }
                        continue;
                    }
                    crate::rtnetlink::NetChange::LinkAppeared { .. } => continue,
                };
                let name = self
                    .net
                    .view
                    .link(ifindex)
                    .map(|l| l.name.as_str())
                    .unwrap_or("");
                let host_iface = crate::addr::FixedStr::new(name).unwrap_or_default();
                debug!(
                    "network: {} {}",
                    if name.is_empty() { "?" } else { name },
                    host_traddr.map_or_else(|| "is up".to_string(), |a| format!("has {a}"))
                );
                self.engine.handle(
                    Input::NetworkReady {
                        host_iface,
                        host_traddr,
                    },
                    now,
                    &mut self.actions,
                );
            }
            // After the changes are logged, so the log reads cause before effect.
            self.feed_ready_nbft_paths();
            self.perform_actions();
        }
        self.net_changes = changes;
    }

    fn drain_signals(&mut self) {
        loop {
            match self.next_signal() {
                Ok(Some(sig)) if sig == libc::SIGHUP => {
                    info!("SIGHUP: re-reading the configuration");
                    self.engine
                        .handle(Input::ConfigReloading, self.now(), &mut self.actions);
                    let loaded = load_config(&self.args);
                    if loaded.has_secrets(&self.args.opts) {
                        crate::secret::keep_out_of_core_dumps();
                    }
                    if loaded.nonvmf {
                        continue;
                    }
                    self.sources = loaded.sources;
                    self.subsystem_keys = loaded.subsystem_keys;
                    self.nbft_from = self.sources.len();
                    self.sources
                        .extend(self.nbft.iter().map(|p| p.source.clone()));
                    self.configure_sources();
                    // The firmware's paths are not the file's: given again with their new place.
                    let now = self.now();
                    for (i, fed) in self.nbft_fed.iter().enumerate() {
                        if let Some(addr) = fed {
                            self.engine.handle(
                                Input::Nbft {
                                    addr: *addr,
                                    subsystem: self.nbft[i].source.subsystem,
                                    opts: OptsRef::Source((self.nbft_from + i) as u16),
                                },
                                now,
                                &mut self.actions,
                            );
                        }
                    }
                    let now = self.now();
                    self.engine
                        .handle(Input::ConfigReloaded, now, &mut self.actions);
                }
                Ok(Some(sig)) => {
                    let name = if sig == libc::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    };
                    info!(
                        "{name}: exiting{}",
                        if self.args.keep {
                            " (--keep: discovery controllers stay up)"
                        } else {
                            ""
                        }
                    );
                    let now = self.now();
                    self.engine.handle(Input::Terminate, now, &mut self.actions);
                }
                Ok(None) => break,
                Err(e) => {
                    error!("{e}");
                    break;
                }
            }
        }
        self.perform_actions();
    }

    fn drain_uevents(&mut self) {
        loop {
            let mut buf = std::mem::take(&mut self.buf);
            let more = match self.uevents.recv(&mut buf) {
                RecvResult::Message(msg) => {
                    self.on_uevent(msg);
                    true
                }
                RecvResult::Dropped(why) => {
                    debug!("dropped uevent: {why}");
                    true
                }
                RecvResult::WouldBlock => false,
                RecvResult::Overflow if self.nonvmf => true,
                RecvResult::Overflow => {
                    warn!(
                        "uevent socket overflowed: events were lost; rescanning and rediscovering everything"
                    );
                    // Remove events may have been lost: our registry entries of controllers that
                    // are gone would outlive them.
                    let live = self.scan_existing();
                    self.kernel.registry.sweep(&live);
                    // FC nvmediscovery events may have been among the lost ones (paced like any).
                    if !(self.args.once || self.args.dry_run) {
                        self.fc_replay.request();
                    }
                    let now = self.now();
                    self.engine.handle(Input::Rescan, now, &mut self.actions);
                    true
                }
                RecvResult::Err(e) => {
                    error!("{e}");
                    false
                }
            };
            self.buf = buf;
            self.perform_actions();
            if !more {
                break;
            }
        }
        self.replay_fc_if_due();
    }

    fn replay_fc_if_due(&mut self) {
        if self.engine.is_terminating() {
            return;
        }
        let now = self.now();
        if self.fc_replay.take_due(now) {
            match self.kernel.sysfs.fc_replay() {
                Ok(true) => info!(
                    "an FC controller went: asked the FC transport to replay its nvmediscovery events"
                ),
                Ok(false) => {}
                Err(e) => warn!("{e}"),
            }
        }
    }

    fn on_uevent(&mut self, msg: &[u8]) {
        if self.nonvmf {
            return;
        }
        let u = match uevent::Uevent::parse(msg) {
            Ok(u) => u,
            Err(why) => {
                debug!("dropped uevent: {why}");
                return;
            }
        };
        if let Some(what) = crate::events::fabrics_appeared(&u) {
            info!("{what} appeared: running pending discoveries");
            let now = self.now();
            self.engine.handle(Input::Rescan, now, &mut self.actions);
            return;
        }
        let ev = match uevent::classify(&u) {
            Classified::Event(ev) => ev,
            Classified::Ignored => return,
            Classified::Invalid(why) => {
                warn!("ignoring malformed uevent {}: {}", u.devpath(), why);
                return;
            }
        };
        debug!("event: {ev}");
        if crate::events::asks_fc_replay(&ev) {
            let ours = ev
                .ctrl()
                .and_then(crate::sysfs::instance_of)
                .is_some_and(|i| self.kernel.took_own_removal(i));
            // A controller we deleted (a temporary discovery controller, our exit) was not lost:
            // replaying for it would make the next run, the next delete, the next replay.
            if !(ours || self.args.once || self.args.dry_run) {
                self.fc_replay.request();
            }
        }
        if let uevent::Event::CtrlRemove { ctrl, .. } = &ev {
            if let Some(instance) = crate::sysfs::instance_of(ctrl) {
                match self.kernel.registry.forget(instance, u.seqnum()) {
                    Ok(true) => debug!("{ctrl}: our registry entry removed"),
                    Ok(false) => {}
                    Err(e) => warn!("{e}"),
                }
            }
        }
        let now = self.now();
        if let Some(input) = crate::events::input_of(
            &ev,
            &self.kernel,
            self.args.persistent,
            self.args.autoconnect,
        ) {
            self.engine.handle(input, now, &mut self.actions);
        }
    }

    fn perform_actions(&mut self) {
        let actions = std::mem::take(&mut self.actions);
        let mut state_changed = false;
        for a in &actions {
            match *a {
                Action::DeleteDc { dc, addr } => {
                    if self.args.dry_run {
                        info!(
                            "dry run: would delete discovery controller nvme{}",
                            dc.instance
                        );
                        continue;
                    }
                    // Instance numbers are reused: delete only what is still our controller.
                    if !discover::delete_if_ours(&self.kernel, &dc, &addr) {
                        if self.engine.is_terminating() {
                            error!("nvme{} stays listed in the state file", dc.instance);
                            self.delete_failed = true;
                        } else {
                            // Released, but still up: keep it as ours (state file, deleted at
                            // exit) rather than leave a controller nobody knows.
                            warn!(
                                "nvme{} at {addr} stays up: kept as ours until exit",
                                dc.instance
                            );
                            let now = self.now();
                            self.engine.handle(
                                Input::Existing {
                                    addr,
                                    dc,
                                    origin: Origin::Startup,
                                },
                                now,
                                &mut self.actions,
                            );
                        }
                    }
                }
                Action::StateChanged => state_changed = true,
                Action::Exit => self.stop = Some(Stop::Signal),
            }
        }
        // What handling them queued (a controller kept after a failed delete) comes next.
        let again = std::mem::replace(&mut self.actions, actions);
        self.actions.clear();
        if !again.is_empty() {
            state_changed = true;
            self.actions
                .extend(again.into_iter().filter(|a| *a != Action::StateChanged));
        }
        // After a failed delete at exit the old state file, which still lists that controller, stays.
        if state_changed && !self.delete_failed {
            self.write_state();
        }
        if !self.actions.is_empty() {
            self.perform_actions();
        }
    }
}

/// The state directory's instance lock. Another daemon holding it ends a daemon's start with a
/// clear error. An unsafe directory is refused; one that cannot be written (read-only /run) is a
/// warning: the state writes then fail loudly.
///
/// `--once` and `--dry-run` never hold it (`None`): they are guests that adopt nothing and write no
/// state, so a daemon starting while one runs (a `--once` can sit in the kernel's admin timeout,
/// 60 s by default) is never refused because of it. What a `--once -p` leaves up is nobody's, as with
/// `nvme connect-all -p`: a daemon started later uses it and never deletes it.
///
/// The second value: another daemon holds the directory (a guest then leaves its ready file too).
fn take_lock(args: &Args) -> Result<(Option<crate::statedir::InstanceLock>, bool)> {
    use crate::statedir::LockError;
    match crate::statedir::lock(&args.state_dir) {
        Ok(lock) if args.once || args.dry_run => {
            drop(lock);
            Ok((None, false))
        }
        Ok(lock) => Ok((Some(lock), false)),
        Err(e @ LockError::Held { .. }) if args.once || args.dry_run => {
            info!(
                "{e}: running beside it; its state file and its discovery controllers are left alone"
            );
            Ok((None, true))
        }
        Err(e @ LockError::Held { .. }) => Err(crate::error::Error::invalid(
            "start",
            format!("{e}: refusing to start a second one"),
        )),
        Err(LockError::Unsafe(e)) => Err(e),
        Err(LockError::Io(e)) => {
            warn!("{e}: running without the instance lock");
            Ok((None, false))
        }
    }
}
