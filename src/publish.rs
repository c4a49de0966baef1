//! What the daemon tells `nvme-monitor status` and the service manager: the status file in the
//! state directory and sd_notify `STATUS=`.
//!
//! The engine keeps what it needs to decide; what an operator wants besides (when the last run
//! ended, how, with which error, what it connected) is kept here, per address, from the reports the
//! shell hands in. [`snapshot`] joins both into a [`Snapshot`]; [`Publisher::publish`] writes it
//! only when it differs from the one written last, so the file changes with the daemon's state:
//! never per event, never on a timer. The `STATUS=` line goes out when its text changes.

use std::path::PathBuf;

use crate::addr::{Nqn, TransportAddr};
use crate::engine::Engine;
use crate::status::{AddrStatus, DaemonInfo, DcOwner, DcStatus, IoCtrl, LastDiscovery, Snapshot};
use crate::table::{Millis, Owner, SlotState};

/// How the last discovery run of an address ended, in engine time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub at: Millis,
    pub ok: bool,
    /// Why it failed, or what failed inside a run that read its log (may be empty).
    pub error: String,
}

/// What the shell saw of one address, beyond what the engine keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub last: Option<LastRun>,
    /// The I/O controllers its last log read connected, or found connected.
    pub io: Vec<IoCtrl>,
}

/// The records, one per slot: an address's discovery slot and each subsystem connected directly
/// at that address are told apart by the subsystem NQN (empty for discovery).
#[derive(Debug, Default)]
pub struct Book {
    records: Vec<(TransportAddr, Nqn, Record)>,
}

impl Book {
    pub fn get(&self, addr: &TransportAddr, subsystem: &Nqn) -> Option<&Record> {
        self.records
            .iter()
            .find(|(a, n, _)| a == addr && n == subsystem)
            .map(|(_, _, r)| r)
    }

    fn entry(&mut self, addr: &TransportAddr, subsystem: &Nqn) -> &mut Record {
        let i = match self
            .records
            .iter()
            .position(|(a, n, _)| a == addr && n == subsystem)
        {
            Some(i) => i,
            None => {
                self.records.push((*addr, *subsystem, Record::default()));
                self.records.len() - 1
            }
        };
        &mut self.records[i].2
    }

    /// A run of the slot (`addr`, `subsystem`) ended. `read_log`: it got as far as reading the
    /// log (a direct subsystem: trying its connect), so `io` is what that led to; a run that
    /// failed before keeps the list of the run before (those controllers did not go because the
    /// discovery controller is unreachable). A direct subsystem's check that finds everything as
    /// it was keeps the time of the first: it reruns whenever any controller goes, and that is
    /// not a change of its state.
    pub fn run_done(
        &mut self,
        addr: &TransportAddr,
        subsystem: &Nqn,
        run: LastRun,
        read_log: bool,
        io: Vec<IoCtrl>,
    ) {
        let r = self.entry(addr, subsystem);
        let same = r
            .last
            .as_ref()
            .is_some_and(|l| l.ok == run.ok && l.error == run.error)
            && (!read_log || r.io == io);
        if !same || subsystem.is_empty() {
            r.last = Some(run);
        }
        if read_log {
            r.io = io;
        }
    }

    /// An entry retry of `addr`'s log connected `io`.
    pub fn entry_connected(&mut self, addr: &TransportAddr, io: Vec<IoCtrl>) {
        let r = self.entry(addr, &Nqn::EMPTY);
        for c in io {
            if !r.io.iter().any(|x| x.name == c.name && x.ino == c.ino) {
                r.io.push(c);
            }
        }
    }

    /// Forget slots the table no longer holds (released), so the book stays as small as the
    /// table.
    pub fn retain(&mut self, engine: &Engine) {
        self.records
            .retain(|(a, n, _)| engine.table().find_subsystem(a, n).is_some());
    }
}

/// Engine time (ms since the daemon started) to Unix seconds, given the Unix time in ms at the
/// daemon's start. Computed from that fixed base, never from the clock at the call, so the same
/// deadline gives the same second in every snapshot.
pub fn unix_of(base_ms: u64, at: Millis) -> u64 {
    base_ms.saturating_add(at) / 1000
}

/// The snapshot of the engine's table and the book; `daemon` gives the parts that do not come
/// from them (its `table_used` and `table_capacity` are filled here, `updated` is left alone).
pub fn snapshot(engine: &Engine, book: &Book, base_ms: u64, daemon: &DaemonInfo) -> Snapshot {
    let mut addrs = Vec::with_capacity(engine.table().len());
    for (id, s) in engine.table().iter() {
        let a = &s.addr;
        // A wait after a success is a temporary controller's EPCSD re-poll, not a retry.
        let retry_slot = match s.state {
            SlotState::WaitRetry { at } if s.failures > 0 => Some(at),
            _ => None,
        };
        // A run that read its log can still leave subsystems retrying on their own backoff.
        let retry_entry = engine
            .entry_retries()
            .filter(|r| r.slot == id)
            .map(|r| r.at)
            .min();
        let next_retry = match (retry_slot, retry_entry) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let record = book.get(a, &s.subsystem);
        addrs.push(AddrStatus {
            transport: a.transport.name().to_owned(),
            traddr: a.traddr.as_str().to_owned(),
            trsvcid: a.trsvcid.as_str().to_owned(),
            host_traddr: a.host_traddr.as_str().to_owned(),
            host_iface: a.host_iface.as_str().to_owned(),
            hostnqn: a.hostnqn.as_str().to_owned(),
            origin: s.origin.name().to_owned(),
            subsysnqn: s.subsystem.as_str().to_owned(),
            dc: s.dc.map(|d| DcStatus {
                name: format!("nvme{}", d.instance),
                ino: d.ino,
                owner: match d.owner {
                    Owner::Ours => DcOwner::Ours,
                    Owner::Adopted => DcOwner::Adopted,
                    Owner::Foreign => DcOwner::Foreign,
                },
            }),
            last: record.and_then(|r| r.last.as_ref()).map(|l| LastDiscovery {
                at: unix_of(base_ms, l.at),
                ok: l.ok,
                error: l.error.clone(),
            }),
            next_retry: next_retry.map(|at| unix_of(base_ms, at)),
            io: record.map(|r| r.io.clone()).unwrap_or_default(),
        });
    }
    Snapshot {
        daemon: DaemonInfo {
            table_used: engine.table().len() as u32,
            table_capacity: crate::table::CAPACITY as u32,
            ..daemon.clone()
        },
        addrs,
    }
}

/// Writes the status file and sends `STATUS=` when what they say changed.
pub struct Publisher {
    dir: PathBuf,
    /// The last snapshot written, with `updated` cleared for the comparison.
    written: Option<Snapshot>,
    summary: String,
    /// The last write failed: say so once, and again only after one succeeded.
    failing: bool,
}

impl Publisher {
    pub fn new(dir: PathBuf) -> Publisher {
        Publisher {
            dir,
            written: None,
            summary: String::new(),
            failing: false,
        }
    }

    /// Write `snap` if it differs from the last one written (its `updated` is set to `now_unix`).
    pub fn publish(&mut self, mut snap: Snapshot, now_unix: u64) {
        snap.daemon.updated = 0;
        let summary = crate::status::summary(&snap);
        if summary != self.summary {
            match crate::notify::sd_notify(&format!("STATUS={summary}")) {
                Ok(_) => self.summary = summary,
                // Sent again with the next snapshot.
                Err(e) => debug!("{e}"),
            }
        }
        if self.written.as_ref() == Some(&snap) {
            return;
        }
        let mut dated = snap.clone();
        dated.daemon.updated = now_unix;
        // Errors quote what the kernel was given: a key must not reach the status file, whatever
        // path a message took (fabrics::connect already hides them; this is the backstop).
        let text = crate::status::render(&dated);
        match crate::status::write(&self.dir, &crate::secret::scrub(&text)) {
            Ok(()) => {
                if self.failing {
                    info!("the status file is written again");
                }
                self.failing = false;
                self.written = Some(snap);
            }
            Err(e) => {
                if !self.failing {
                    warn!(
                        "{e}: `nvme-monitor status` shows the last status written until the next change of state"
                    );
                }
                self.failing = true;
                // Remembered: tried again on the next change of state, not on every wakeup.
                self.written = Some(snap);
            }
        }
    }

    /// The daemon stops: nobody is to read its status any more.
    pub fn remove(&self) {
        if let Err(e) = crate::status::remove(&self.dir) {
            warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{Nqn, Transport};
    use crate::engine::{Action, EngineConfig, Input, Outcome};
    use crate::table::{DiscoveryCtrl, OptsRef};

    fn tcp(traddr: &str) -> TransportAddr {
        TransportAddr::new(Transport::Tcp, traddr, "8009", "", "").unwrap()
    }

    fn outcome(ok: bool, dc: Option<DiscoveryCtrl>) -> Outcome {
        Outcome {
            ok,
            dc,
            referrals: vec![],
            failed_entries: vec![],
            skipped_entries: vec![],
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        }
    }

    const BASE: u64 = 1_767_225_600_000;

    #[test]
    fn a_failed_run_shows_its_error_and_retry_and_keeps_the_io_list_of_the_run_before() {
        let mut e = Engine::new(EngineConfig {
            persistent: true,
            ..EngineConfig::default()
        });
        let mut out = Vec::<Action>::new();
        let a = tcp("10.0.0.1");
        e.handle(
            Input::Configured {
                addr: a,
                opts: OptsRef::Global,
            },
            0,
            &mut out,
        );
        let dc = DiscoveryCtrl {
            instance: 3,
            owner: Owner::Ours,
            cntlid: 1,
            subsysnqn: Nqn::EMPTY,
            ino: 33,
        };
        let mut book = Book::default();
        let id = e.next_work(0).unwrap();
        e.discovery_done(id, outcome(true, Some(dc)), 2_000, &mut out);
        let io = vec![IoCtrl {
            name: "nvme4".into(),
            ino: 44,
            subsysnqn: "nqn.s".into(),
        }];
        let ok = LastRun {
            at: 2_000,
            ok: true,
            error: String::new(),
        };
        book.run_done(&a, &Nqn::EMPTY, ok, true, io.clone());
        let snap = snapshot(&e, &book, BASE, &DaemonInfo::default());
        let s = &snap.addrs[0];
        assert_eq!(s.origin, "config");
        assert_eq!(s.dc.as_ref().unwrap().name, "nvme3");
        assert_eq!(s.dc.as_ref().unwrap().owner, DcOwner::Ours);
        assert_eq!(s.last.as_ref().unwrap().at, BASE / 1000 + 2);
        assert_eq!(s.next_retry, None);
        assert_eq!(s.io, io);
        assert_eq!(snap.daemon.table_used, 1);

        // The discovery controller is lost; the next run fails before reading a log.
        e.handle(
            Input::CtrlRemoved {
                instance: 3,
                current: None,
            },
            3_000,
            &mut out,
        );
        let id = e.next_work(3_000).unwrap();
        e.discovery_done(id, outcome(false, None), 4_500, &mut out);
        let failed = LastRun {
            at: 4_500,
            ok: false,
            error: "connect refused".into(),
        };
        book.run_done(&a, &Nqn::EMPTY, failed, false, vec![]);
        let snap = snapshot(&e, &book, BASE, &DaemonInfo::default());
        let s = &snap.addrs[0];
        assert_eq!(s.dc, None);
        let last = s.last.as_ref().unwrap();
        assert!(!last.ok);
        assert_eq!(last.error, "connect refused");
        let retry = s.next_retry.expect("a failed run has a retry");
        assert!(retry > BASE / 1000 + 4, "{retry}");
        assert_eq!(
            s.io, io,
            "the I/O controllers did not go with the discovery controller"
        );
        // The same state twice is the same snapshot (the file is not rewritten).
        assert_eq!(snap, snapshot(&e, &book, BASE, &DaemonInfo::default()));
    }

    #[test]
    fn the_file_is_written_on_a_change_only_and_removed_at_the_end() {
        let dir = std::env::temp_dir().join(format!("nm-publish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut p = Publisher::new(dir.clone());
        let mut snap = Snapshot::default();
        snap.daemon.pid = 42;
        p.publish(snap.clone(), 100);
        let first = crate::status::read(&dir).unwrap().unwrap();
        assert!(first.contains("updated=100"), "{first}");
        // Nothing changed but the clock: not rewritten.
        p.publish(snap.clone(), 200);
        assert_eq!(crate::status::read(&dir).unwrap().unwrap(), first);
        snap.daemon.table_used = 1;
        p.publish(snap, 300);
        let parsed = crate::status::parse(&crate::status::read(&dir).unwrap().unwrap()).unwrap();
        assert_eq!((parsed.daemon.updated, parsed.daemon.table_used), (300, 1));
        p.remove();
        assert_eq!(crate::status::read(&dir).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_direct_subsystem_has_its_own_record_beside_the_discovery_slot_of_its_address() {
        let mut e = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        let a = tcp("10.0.0.2");
        let nqn = Nqn::new("nqn.2024-01.io.example:direct").unwrap();
        e.handle(
            Input::Configured {
                addr: a,
                opts: OptsRef::Global,
            },
            0,
            &mut out,
        );
        e.handle(
            Input::ConfiguredSubsystem {
                addr: a,
                subsystem: nqn,
                opts: OptsRef::Global,
            },
            0,
            &mut out,
        );
        let io = |name: &str| IoCtrl {
            name: name.into(),
            ino: 1,
            subsysnqn: "nqn.x".into(),
        };
        let run = |at, ok| LastRun {
            at,
            ok,
            error: String::new(),
        };
        let mut book = Book::default();
        book.run_done(&a, &Nqn::EMPTY, run(1_000, true), true, vec![io("nvme1")]);
        book.run_done(&a, &nqn, run(2_000, true), true, vec![io("nvme2")]);
        book.retain(&e);
        let snap = snapshot(&e, &book, BASE, &DaemonInfo::default());
        let shown: Vec<(&str, &str, u64)> = snap
            .addrs
            .iter()
            .map(|s| {
                (
                    s.subsysnqn.as_str(),
                    s.io[0].name.as_str(),
                    s.last.as_ref().unwrap().at,
                )
            })
            .collect();
        let secs = BASE / 1000;
        assert_eq!(
            shown,
            [("", "nvme1", secs + 1), (nqn.as_str(), "nvme2", secs + 2)]
        );
        assert_eq!(
            crate::status::summary(&snap),
            "0 discovery controllers, 1 subsystem connected"
        );
        // Rerun because some controller went, found as it was: its time stays (no rewrite).
        book.run_done(&a, &nqn, run(9_000, true), true, vec![io("nvme2")]);
        assert_eq!(book.get(&a, &nqn).unwrap().last.as_ref().unwrap().at, 2_000);
        // A discovery slot's run is always a new last discovery.
        book.run_done(&a, &Nqn::EMPTY, run(9_000, true), true, vec![io("nvme1")]);
        let last = book.get(&a, &Nqn::EMPTY).unwrap().last.as_ref().unwrap().at;
        assert_eq!(last, 9_000);
    }

    #[test]
    fn an_epcsd_re_poll_is_not_a_retry() {
        let mut e = Engine::new(EngineConfig {
            persistent: true,
            ..EngineConfig::default()
        });
        let mut out = Vec::new();
        let parent = tcp("10.0.0.3");
        e.handle(
            Input::Configured {
                addr: parent,
                opts: OptsRef::Global,
            },
            0,
            &mut out,
        );
        let id = e.next_work(0).unwrap();
        let mut o = outcome(true, None);
        o.referrals.push(crate::engine::Referral {
            addr: tcp("10.0.0.4"),
            persistent_ok: false,
            dc_nqn: Nqn::new("nqn.2024-01.io.example:unique-dc").unwrap(),
            tls: false,
        });
        e.discovery_done(id, o, 10, &mut out);
        let child = e.next_work(20).unwrap();
        e.discovery_done(child, outcome(true, None), 30, &mut out);
        assert!(matches!(
            e.slot(child).unwrap().state,
            SlotState::WaitRetry { .. }
        ));
        let snap = snapshot(&e, &Book::default(), BASE, &DaemonInfo::default());
        assert!(
            snap.addrs.iter().all(|a| a.next_retry.is_none()),
            "{snap:?}"
        );
        assert!(!crate::status::summary(&snap).contains("retrying"));
    }

    #[test]
    fn released_addresses_leave_the_book() {
        let mut e = Engine::new(EngineConfig::default());
        let mut book = Book::default();
        let a = tcp("10.0.0.9");
        book.entry_connected(&a, vec![]);
        assert!(book.get(&a, &Nqn::EMPTY).is_some());
        book.retain(&e);
        assert!(book.get(&a, &Nqn::EMPTY).is_none());
        let mut out = Vec::new();
        e.handle(
            Input::Configured {
                addr: a,
                opts: OptsRef::Global,
            },
            0,
            &mut out,
        );
        let io = IoCtrl {
            name: "nvme1".into(),
            ino: 1,
            subsysnqn: "nqn.s".into(),
        };
        book.entry_connected(&a, vec![io.clone()]);
        book.entry_connected(&a, vec![io.clone()]);
        book.retain(&e);
        assert_eq!(book.get(&a, &Nqn::EMPTY).unwrap().io, vec![io]);
    }
}
