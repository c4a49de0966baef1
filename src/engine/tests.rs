//! Event sequences through the engine.

use super::*;
use crate::addr::{Nqn, Transport};
use crate::table::CAPACITY;

fn tcp(i: u32) -> TransportAddr {
    TransportAddr::new(Transport::Tcp, &format!("192.168.1.{i}"), "8009", "", "").unwrap()
}

fn fc() -> TransportAddr {
    TransportAddr::new(
        Transport::Fc,
        "nn-0x10001100ab000001:pn-0x20001100ab000001",
        "",
        "nn-0x10001100aa000001:pn-0x20001100aa000001",
        "",
    )
    .unwrap()
}

fn dc(instance: u32, owner: Owner) -> DiscoveryCtrl {
    DiscoveryCtrl {
        instance,
        owner,
        cntlid: 1,
        subsysnqn: Nqn::EMPTY,
        ino: 500 + instance as u64,
    }
}

fn ok(dc: Option<DiscoveryCtrl>) -> Outcome {
    Outcome {
        ok: true,
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

fn failed() -> Outcome {
    Outcome {
        ok: false,
        dc: None,
        referrals: vec![],
        failed_entries: vec![],
        skipped_entries: vec![],
        addr_gone: false,
        auth_failed_entries: Vec::new(),
        auth_failed: false,
        refused: false,
    }
}

fn referral(addr: TransportAddr) -> Referral {
    Referral {
        addr,
        persistent_ok: true,
        dc_nqn: Nqn::EMPTY,
        tls: false,
    }
}

fn persistent() -> Engine {
    Engine::new(EngineConfig {
        persistent: true,
        ..Default::default()
    })
}

fn configure(e: &mut Engine, addr: TransportAddr) -> Vec<Action> {
    let mut out = vec![];
    e.handle(
        Input::Configured {
            addr,
            opts: OptsRef::Global,
        },
        0,
        &mut out,
    );
    out
}

#[test]
fn configured_address_is_discovered_once() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let id = e.next_work(0).unwrap();
    assert_eq!(e.slot(id).unwrap().state, SlotState::Discovering);
    assert_eq!(e.next_work(0), None, "one discovery at a time");
    let mut out = vec![];
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 10, &mut out);
    assert_eq!(out, vec![Action::StateChanged]);
    assert_eq!(e.next_work(10), None, "nothing more to do");
    assert_eq!(e.next_deadline(), None, "idle: no wake-ups");
}

#[test]
fn thousand_aens_during_discovery_give_exactly_one_rerun() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let id = e.next_work(0).unwrap();
    let mut out = vec![];
    // The run creates nvme0; AENs from it queue up in the socket meanwhile.
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 5, &mut out);
    for _ in 0..1000 {
        e.handle(
            Input::LogChanged {
                instance: 0,
                ino: 0,
                addr: tcp(1),
            },
            6,
            &mut out,
        );
    }
    assert_eq!(e.next_work(6), Some(id));
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 7, &mut out);
    assert_eq!(e.next_work(7), None);
    assert_eq!(e.slot(id).unwrap().discoveries, 2);
}

#[test]
fn aens_while_discovering_coalesce_into_one() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let id = e.next_work(0).unwrap();
    let mut out = vec![];
    for _ in 0..1000 {
        e.handle(
            Input::LogChanged {
                instance: 0,
                ino: 0,
                addr: tcp(1),
            },
            1,
            &mut out,
        );
    }
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 2, &mut out);
    assert_eq!(e.next_work(2), Some(id));
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 3, &mut out);
    assert_eq!(e.next_work(3), None);
}

#[test]
fn interleaved_addresses_each_run_once_in_arrival_order() {
    let mut e = persistent();
    let mut out = vec![];
    for _ in 0..100 {
        e.handle(
            Input::LogChanged {
                instance: 3,
                ino: 0,
                addr: tcp(3),
            },
            0,
            &mut out,
        );
        e.handle(
            Input::LogChanged {
                instance: 4,
                ino: 0,
                addr: tcp(4),
            },
            0,
            &mut out,
        );
    }
    let a = e.next_work(0).unwrap();
    assert_eq!(e.slot(a).unwrap().addr, tcp(3));
    e.discovery_done(a, ok(e.slot(a).unwrap().dc), 1, &mut out);
    let b = e.next_work(1).unwrap();
    assert_eq!(e.slot(b).unwrap().addr, tcp(4));
    e.discovery_done(b, ok(e.slot(b).unwrap().dc), 2, &mut out);
    assert_eq!(e.next_work(2), None);
}

#[test]
fn unknown_discovery_controller_is_used_as_foreign() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(
        Input::LogChanged {
            instance: 9,
            ino: 0,
            addr: tcp(9),
        },
        0,
        &mut out,
    );
    let id = e.next_work(0).unwrap();
    let s = e.slot(id).unwrap();
    assert_eq!(s.origin, Origin::Aen);
    assert_eq!(s.dc.unwrap().owner, Owner::Foreign);
    assert!(
        out.is_empty(),
        "a foreign controller does not change our state file"
    );
}

#[test]
fn our_own_connect_event_does_not_rerun() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let id = e.next_work(0).unwrap();
    let mut out = vec![];
    e.discovery_done(id, ok(Some(dc(2, Owner::Ours))), 1, &mut out);
    // The `connected` uevent for the controller we just created arrives after the run.
    e.handle(
        Input::DcLive {
            instance: 2,
            ino: 0,
            addr: tcp(1),
        },
        2,
        &mut out,
    );
    assert_eq!(e.next_work(2), None);
}

#[test]
fn full_table_refuses_new_address_and_keeps_old_ones() {
    let mut e = persistent();
    for i in 0..CAPACITY as u32 {
        configure(
            &mut e,
            TransportAddr::new(
                Transport::Tcp,
                &format!("10.1.{}.{}", i / 256, i % 256),
                "8009",
                "",
                "",
            )
            .unwrap(),
        );
    }
    let mut out = vec![];
    e.handle(Input::FcDiscovery { addr: fc() }, 0, &mut out);
    assert_eq!(e.table().len(), CAPACITY);
    assert!(e.table().find(&fc()).is_none());
    assert!(
        e.table()
            .find(&TransportAddr::new(Transport::Tcp, "10.1.0.0", "8009", "", "").unwrap())
            .is_some()
    );
}

#[test]
fn retry_backoff_grows_and_caps() {
    let cfg = EngineConfig {
        persistent: true,
        keep: false,
        retry_base: 1000,
        retry_cap: 8000,
        ..EngineConfig::default()
    };
    let delays: Vec<_> = (1..=6).map(|f| backoff(&cfg, f)).collect();
    assert_eq!(delays, vec![1000, 2000, 4000, 8000, 8000, 8000]);
    assert_eq!(backoff(&cfg, u32::MAX), 8000, "no overflow");

    let mut e = Engine::new(cfg);
    configure(&mut e, tcp(1));
    let mut now = 0;
    let mut out = vec![];
    let mut seen = vec![];
    for _ in 0..5 {
        let id = e.next_work(now).unwrap();
        e.discovery_done(id, failed(), now, &mut out);
        let at = e.next_deadline().unwrap();
        seen.push(at - now);
        assert_eq!(e.next_work(at - 1), None, "not before the deadline");
        now = at;
    }
    assert_eq!(seen, vec![1000, 2000, 4000, 8000, 8000]);
    let id = e.next_work(now).unwrap();
    e.discovery_done(id, ok(None), now, &mut out);
    assert_eq!(
        e.slot(id).unwrap().failures,
        0,
        "success resets the backoff"
    );
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn failing_address_does_not_starve_others() {
    let cfg = EngineConfig {
        persistent: true,
        keep: false,
        retry_base: 0,
        retry_cap: 0,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    configure(&mut e, tcp(1));
    configure(&mut e, tcp(2));
    let mut out = vec![];
    let mut ran = vec![];
    for now in 0..6 {
        let id = e.next_work(now).unwrap();
        let addr = e.slot(id).unwrap().addr;
        ran.push(addr);
        let outcome = if addr == tcp(1) { failed() } else { ok(None) };
        e.discovery_done(id, outcome, now, &mut out);
        // Fresh events keep arriving for the healthy address.
        e.handle(
            Input::LogChanged {
                instance: 50,
                ino: 0,
                addr: tcp(2),
            },
            now,
            &mut out,
        );
    }
    let healthy = ran.iter().filter(|a| **a == tcp(2)).count();
    let failing = ran.iter().filter(|a| **a == tcp(1)).count();
    assert!(
        healthy >= 2 && failing >= 2,
        "both addresses get turns: {ran:?}"
    );
}

#[test]
fn sigterm_while_discovering_waits_then_deletes_only_ours() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    e.handle(
        Input::Existing {
            addr: tcp(7),
            dc: dc(7, Owner::Foreign),
            origin: Origin::Startup,
        },
        0,
        &mut out,
    );
    e.handle(
        Input::Existing {
            addr: tcp(8),
            dc: dc(8, Owner::Adopted),
            origin: Origin::Config,
        },
        0,
        &mut out,
    );
    out.clear();
    let id = e.next_work(0).unwrap();
    e.handle(Input::Terminate, 1, &mut out);
    assert!(out.is_empty(), "nothing happens while discovery runs");
    assert_eq!(e.next_work(1), None, "no new work after SIGTERM");
    // The run that was in flight created nvme3: it must not leak.
    e.discovery_done(id, ok(Some(dc(3, Owner::Ours))), 2, &mut out);
    let mut deleted: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            Action::DeleteDc { dc, .. } => Some(dc.instance),
            _ => None,
        })
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![3, 8],
        "ours and adopted, never the foreign nvme7"
    );
    assert_eq!(out.last(), Some(&Action::Exit));
}

#[test]
fn keep_leaves_controllers_up() {
    let mut e = Engine::new(EngineConfig {
        persistent: true,
        keep: true,
        ..Default::default()
    });
    configure(&mut e, tcp(1));
    let id = e.next_work(0).unwrap();
    let mut out = vec![];
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 1, &mut out);
    out.clear();
    e.handle(Input::Terminate, 2, &mut out);
    assert_eq!(out, vec![Action::Exit]);
    assert_eq!(
        e.owned().count(),
        1,
        "state still lists nvme0 for the next instance"
    );
}

#[test]
fn lost_persistent_controller_is_recreated_with_backoff() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, ok(Some(dc(0, Owner::Ours))), 0, &mut out);
    out.clear();
    e.handle(
        Input::CtrlRemoved {
            instance: 0,
            current: None,
        },
        10,
        &mut out,
    );
    assert_eq!(out, vec![Action::StateChanged]);
    assert_eq!(e.next_work(10), Some(id), "first loss: recreate at once");
    e.discovery_done(id, failed(), 10, &mut out);
    assert_eq!(e.next_work(11), None, "a failed recreate backs off");
    assert_eq!(e.next_deadline(), Some(1010));
}

#[test]
fn removed_foreign_controller_from_startup_scan_is_forgotten() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(
        Input::Existing {
            addr: tcp(5),
            dc: dc(5, Owner::Foreign),
            origin: Origin::Startup,
        },
        0,
        &mut out,
    );
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, ok(Some(dc(5, Owner::Foreign))), 1, &mut out);
    e.handle(
        Input::CtrlRemoved {
            instance: 5,
            current: None,
        },
        2,
        &mut out,
    );
    assert!(e.table().is_empty(), "nobody asked for that address");
    assert!(out.is_empty());
}

#[test]
fn non_persistent_mode_does_not_recreate() {
    let mut e = Engine::new(EngineConfig::default());
    configure(&mut e, tcp(1));
    let mut out = vec![];
    e.handle(
        Input::Existing {
            addr: tcp(1),
            dc: dc(4, Owner::Foreign),
            origin: Origin::Startup,
        },
        0,
        &mut out,
    );
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, ok(Some(dc(4, Owner::Foreign))), 1, &mut out);
    e.handle(
        Input::CtrlRemoved {
            instance: 4,
            current: None,
        },
        2,
        &mut out,
    );
    assert_eq!(e.next_work(2), None);
    assert!(
        e.table().find(&tcp(1)).is_some(),
        "configured address stays known"
    );
}

#[test]
fn referrals_are_followed_once_and_loops_end() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let a = e.next_work(0).unwrap();
    e.discovery_done(
        a,
        Outcome {
            ok: true,
            dc: None,
            referrals: vec![referral(tcp(2)), referral(tcp(2))],
            failed_entries: vec![],
            skipped_entries: vec![],
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        },
        1,
        &mut out,
    );
    let b = e.next_work(1).unwrap();
    assert_eq!(e.slot(b).unwrap().addr, tcp(2));
    assert_eq!(e.slot(b).unwrap().origin, Origin::Referral);
    // tcp(2) refers back to tcp(1): a loop, not followed again.
    e.discovery_done(
        b,
        Outcome {
            ok: true,
            dc: None,
            referrals: vec![referral(tcp(1))],
            failed_entries: vec![],
            skipped_entries: vec![],
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        },
        2,
        &mut out,
    );
    assert_eq!(e.next_work(2), None);
    assert_eq!(e.table().len(), 2);
}

#[test]
fn fc_event_cuts_backoff_short() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(Input::FcDiscovery { addr: fc() }, 0, &mut out);
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, failed(), 0, &mut out);
    e.discovery_done(id, failed(), 0, &mut out);
    assert!(e.next_work(1).is_none());
    e.handle(Input::FcDiscovery { addr: fc() }, 1, &mut out);
    assert_eq!(e.next_work(1), Some(id));
}

#[test]
fn rescan_queues_every_address() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    configure(&mut e, tcp(2));
    let mut out = vec![];
    for _ in 0..2 {
        let id = e.next_work(0).unwrap();
        e.discovery_done(id, ok(None), 0, &mut out);
    }
    assert_eq!(e.next_work(0), None);
    e.handle(Input::Rescan, 1, &mut out);
    let mut n = 0;
    while let Some(id) = e.next_work(1) {
        e.discovery_done(id, ok(None), 1, &mut out);
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn config_reload_remaps_options_and_drops_removed_addresses() {
    let mut e = persistent();
    let mut out = vec![];
    for (i, a) in [tcp(1), tcp(2)].into_iter().enumerate() {
        e.handle(
            Input::Configured {
                addr: a,
                opts: OptsRef::Source(i as u16),
            },
            0,
            &mut out,
        );
    }
    // Our persistent discovery controller at tcp(1), a referral it led to.
    let a = e.next_work(0).unwrap();
    let ours = dc(4, Owner::Ours);
    e.discovery_done(
        a,
        Outcome {
            referrals: vec![referral(tcp(9))],
            ..ok(Some(ours))
        },
        0,
        &mut out,
    );
    // The new file drops tcp(1) and has tcp(2) as its first line.
    e.handle(Input::ConfigReloading, 1, &mut out);
    e.handle(
        Input::Configured {
            addr: tcp(2),
            opts: OptsRef::Source(0),
        },
        1,
        &mut out,
    );
    // Until the reload is complete nothing is released.
    assert!(e.table().find(&tcp(1)).is_some());
    out.clear();
    e.handle(Input::ConfigReloaded, 1, &mut out);
    assert_eq!(e.table().find(&tcp(1)), None);
    assert!(out.contains(&Action::DeleteDc {
        dc: ours,
        addr: tcp(1)
    }));
    let two = e.slot(e.table().find(&tcp(2)).unwrap()).unwrap();
    assert_eq!((two.origin, two.opts), (Origin::Config, OptsRef::Source(0)));
    // Its referral lost its only referrer: released once the grace period is over, not before.
    let nine = e.table().find(&tcp(9)).unwrap();
    assert_eq!(e.slot(nine).unwrap().orphan_since, Some(1));
    let grace = e.cfg.prune_grace;
    e.expire(grace, &mut out);
    assert!(e.table().find(&tcp(9)).is_some());
    e.expire(grace + 1, &mut out);
    assert_eq!(e.table().find(&tcp(9)), None);
}

/// A small deterministic PRNG (xorshift) so the random sequences are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random event sequences against the invariants that protect a storage engineer:
/// at most one discovery at a time, a foreign controller is never deleted, every queued address
/// is eventually discovered, and a terminate always ends in Exit with nothing of ours left.
#[test]
fn random_sequences_keep_the_invariants() {
    for seed in 1..200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let keep = rng.below(2) == 0;
        let mut e = Engine::new(EngineConfig {
            persistent: true,
            keep,
            retry_base: 10,
            retry_cap: 80,
            ..EngineConfig::default()
        });
        let mut out = vec![];
        let mut now = 0;
        let mut running: Option<SlotId> = None;
        let mut next_instance = 100;
        let foreign: Vec<u32> = (0..3).collect();
        for (i, f) in foreign.iter().enumerate() {
            e.handle(
                Input::Existing {
                    addr: tcp(50 + i as u32),
                    dc: dc(*f, Owner::Foreign),
                    origin: Origin::Startup,
                },
                0,
                &mut out,
            );
        }
        for _ in 0..300 {
            now += rng.below(20);
            match rng.below(7) {
                0 => e.handle(
                    Input::LogChanged {
                        instance: rng.below(8) as u32,
                        ino: 0,
                        addr: tcp(rng.below(6) as u32),
                    },
                    now,
                    &mut out,
                ),
                1 => e.handle(
                    Input::CtrlRemoved {
                        instance: rng.below(110) as u32,
                        current: None,
                    },
                    now,
                    &mut out,
                ),
                2 => e.handle(
                    Input::Configured {
                        addr: tcp(rng.below(6) as u32),
                        opts: OptsRef::Global,
                    },
                    now,
                    &mut out,
                ),
                3 => e.handle(Input::FcDiscovery { addr: fc() }, now, &mut out),
                _ => {
                    if let Some(id) = running.take() {
                        let prev = e.slot(id).unwrap().dc;
                        let ok = rng.below(3) != 0;
                        let new_dc = match prev {
                            Some(d) => Some(d),
                            None if ok => {
                                next_instance += 1;
                                Some(dc(next_instance, Owner::Ours))
                            }
                            None => None,
                        };
                        let referrals = if rng.below(4) == 0 {
                            vec![referral(tcp(rng.below(8) as u32))]
                        } else {
                            vec![]
                        };
                        e.discovery_done(
                            id,
                            Outcome {
                                ok,
                                dc: new_dc,
                                referrals,
                                failed_entries: vec![],
                                skipped_entries: vec![],
                                addr_gone: false,
                                auth_failed_entries: Vec::new(),
                                auth_failed: false,
                                refused: false,
                            },
                            now,
                            &mut out,
                        );
                    } else {
                        running = e.next_work(now);
                    }
                }
            }
            let discovering = e
                .table()
                .iter()
                .filter(|(_, s)| s.state == SlotState::Discovering)
                .count();
            assert!(
                discovering <= 1,
                "seed {seed}: {discovering} discoveries at once"
            );
        }
        if let Some(id) = running.take() {
            e.discovery_done(id, ok(e.slot(id).unwrap().dc), now, &mut out);
        }
        // Everything queued runs eventually (deadlines included).
        let mut guard = 0;
        while e.has_due_work(u64::MAX / 2) || e.table().iter().any(|(_, s)| s.pending) {
            let id = e
                .next_work(u64::MAX / 2)
                .expect("due work must be handed out");
            e.discovery_done(id, ok(e.slot(id).unwrap().dc), u64::MAX / 2, &mut out);
            guard += 1;
            assert!(guard < 1000, "seed {seed}: work never drains");
        }
        out.clear();
        e.handle(Input::Terminate, now, &mut out);
        assert_eq!(out.last(), Some(&Action::Exit), "seed {seed}");
        for a in &out {
            if let Action::DeleteDc { dc, .. } = a {
                let instance = &dc.instance;
                assert!(
                    !foreign.contains(instance),
                    "seed {seed}: deleted foreign nvme{instance}"
                );
                assert!(!keep, "seed {seed}: --keep deleted nvme{instance}");
            }
        }
        if !keep {
            assert_eq!(e.owned().count(), 0, "seed {seed}: ours left after exit");
        }
    }
}

#[test]
fn rescan_cuts_retry_waits_short() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, failed(), 0, &mut out);
    assert_eq!(e.next_work(1), None, "waiting to retry");
    e.handle(Input::Rescan, 1, &mut out);
    assert_eq!(
        e.next_work(1),
        Some(id),
        "/dev/nvme-fabrics appeared: run now"
    );
}

#[test]
fn referral_without_persistent_support_is_temporary() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let a = e.next_work(0).unwrap();
    let refs = vec![
        Referral {
            addr: tcp(2),
            persistent_ok: false,
            dc_nqn: Nqn::EMPTY,
            tls: false,
        },
        referral(tcp(3)),
    ];
    e.discovery_done(
        a,
        Outcome {
            ok: true,
            dc: None,
            referrals: refs,
            failed_entries: vec![],
            skipped_entries: vec![],
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        },
        1,
        &mut out,
    );
    let two = e.slot(e.table().find(&tcp(2)).unwrap()).unwrap();
    let three = e.slot(e.table().find(&tcp(3)).unwrap()).unwrap();
    assert!(two.temporary && !three.temporary);
}

#[test]
fn removal_during_a_run_leaves_the_run_alone() {
    // Found by the engine fuzz target: with failures > 0, the remove event of the slot's own
    // controller during its run turned Discovering into WaitRetry, and a second run could start.
    let mut e = persistent();
    configure(&mut e, tcp(1));
    configure(&mut e, tcp(2));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    e.discovery_done(
        id,
        Outcome {
            ok: false,
            dc: Some(dc(5, Owner::Ours)),
            referrals: vec![],
            failed_entries: vec![],
            skipped_entries: vec![],
            addr_gone: false,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
        },
        0,
        &mut out,
    );
    let id = loop {
        let next = e.next_work(10_000).unwrap();
        if e.slot(next).unwrap().failures > 0 {
            break next;
        }
        e.discovery_done(next, ok(None), 10_000, &mut out);
    };
    e.handle(
        Input::CtrlRemoved {
            instance: 5,
            current: None,
        },
        10_001,
        &mut out,
    );
    assert_eq!(e.slot(id).unwrap().state, SlotState::Discovering);
    assert_eq!(e.next_work(10_002), None, "still one discovery at a time");
}

/// A slot failed `n` times and now waits for its retry.
fn failing(e: &mut Engine, addr: TransportAddr, n: u32) -> SlotId {
    configure(e, addr);
    let mut out = vec![];
    let mut id = None;
    for i in 0..n {
        let now = 100_000 * i as u64;
        let got = e.next_work(now).expect("due");
        e.discovery_done(got, failed(), now, &mut out);
        id = Some(got);
    }
    id.unwrap()
}

#[test]
fn a_new_reason_cuts_a_backoff_short_and_a_storm_still_gives_one_run() {
    // The sixth failure at 500 s waits 32 s, until 532 s.
    let t = 510_000;
    // SIGHUP: the reload names the address again.
    let mut e = persistent();
    let id = failing(&mut e, tcp(1), 6);
    assert_eq!(e.next_work(t), None, "waiting out its backoff");
    let mut out = vec![];
    e.handle(Input::ConfigReloading, t, &mut out);
    for _ in 0..100 {
        e.handle(
            Input::Configured {
                addr: tcp(1),
                opts: OptsRef::Global,
            },
            t,
            &mut out,
        );
    }
    e.handle(Input::ConfigReloaded, t, &mut out);
    assert_eq!(e.next_work(t), Some(id));
    assert_eq!(e.next_work(t), None);
    // The failure count stays: failing again waits the full backoff.
    e.discovery_done(id, failed(), t, &mut out);
    assert!(matches!(e.slot(id).unwrap().state, SlotState::WaitRetry { at } if at == t + 60_000));

    // An AEN or rediscover of a live discovery controller, and a transport module (Rescan).
    for input in [
        Input::LogChanged {
            instance: 7,
            ino: 0,
            addr: tcp(1),
        },
        Input::Rescan,
    ] {
        let mut e = persistent();
        let id = failing(&mut e, tcp(1), 6);
        for _ in 0..1000 {
            e.handle(input.clone(), t, &mut out);
        }
        assert_eq!(e.next_work(t), Some(id), "{input:?}");
        e.discovery_done(id, ok(None), t, &mut out);
        assert_eq!(e.next_work(t), None, "{input:?}: one run for the storm");
    }
}

#[test]
fn a_late_remove_of_a_reused_number_keeps_ours_and_a_real_loss_is_seen() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    let ours = dc(3, Owner::Ours);
    e.discovery_done(id, ok(Some(ours)), 0, &mut out);
    // The remove of the number's earlier holder arrives late: nvme3 is ours (same identity).
    e.handle(
        Input::CtrlRemoved {
            instance: 3,
            current: Some(ours.ino),
        },
        1,
        &mut out,
    );
    assert_eq!(e.slot(id).unwrap().dc, Some(ours));
    // Kept, and checked by a run (the directory may outlive the event by a moment).
    assert_eq!(e.next_work(1), Some(id));
    e.discovery_done(id, ok(Some(ours)), 1, &mut out);
    // Ours is removed and the number taken by another controller before we read the event: the
    // loss is seen, and the address is recreated.
    e.handle(
        Input::CtrlRemoved {
            instance: 3,
            current: Some(ours.ino + 1),
        },
        2,
        &mut out,
    );
    assert_eq!(e.slot(id).unwrap().dc, None);
    assert_eq!(e.next_work(2), Some(id));
}

#[test]
fn events_of_a_reused_number_do_not_belong_to_our_slot() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, ok(Some(dc(3, Owner::Ours))), 0, &mut out);
    // nvme3 is somebody else's now (another identity), at another address.
    e.handle(
        Input::LogChanged {
            instance: 3,
            ino: 9999,
            addr: tcp(2),
        },
        1,
        &mut out,
    );
    let other = e.table().find(&tcp(2)).expect("a slot of its own");
    assert_ne!(other, id);
    assert_eq!(e.slot(other).unwrap().dc.unwrap().owner, Owner::Foreign);
    assert!(!e.slot(id).unwrap().pending);
}

#[test]
fn referrals_inherit_their_parents_options_and_are_pruned_when_no_log_names_them() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(
        Input::Configured {
            addr: tcp(1),
            opts: OptsRef::Source(3),
        },
        0,
        &mut out,
    );
    let p = e.next_work(0).unwrap();
    let ours = dc(5, Owner::Ours);
    e.discovery_done(
        p,
        Outcome {
            referrals: vec![referral(tcp(2))],
            ..ok(Some(ours))
        },
        0,
        &mut out,
    );
    let r = e.table().find(&tcp(2)).unwrap();
    assert_eq!(e.slot(r).unwrap().opts, OptsRef::Source(3));
    let rid = e.next_work(0).unwrap();
    assert_eq!(rid, r);
    let theirs = dc(6, Owner::Ours);
    e.discovery_done(r, ok(Some(theirs)), 0, &mut out);
    // A failed parent run says nothing about its log: the referral stays named.
    e.handle(Input::Rescan, 10, &mut out);
    let p2 = e.next_work(10).unwrap();
    e.discovery_done(p2, failed(), 10, &mut out);
    assert_eq!(e.slot(r).unwrap().orphan_since, None);
    // The parent's log no longer names it: orphaned, released after the grace, ours deleted.
    e.handle(Input::Rescan, 20, &mut out);
    while let Some(id) = e.next_work(20) {
        let o = if id == p {
            ok(Some(ours))
        } else {
            ok(Some(theirs))
        };
        e.discovery_done(id, o, 20, &mut out);
    }
    assert_eq!(e.slot(r).unwrap().orphan_since, Some(20));
    let grace = e.cfg.prune_grace;
    assert_eq!(e.next_deadline(), Some(20 + grace));
    out.clear();
    e.expire(20 + grace, &mut out);
    assert_eq!(e.table().find(&tcp(2)), None);
    assert!(out.contains(&Action::DeleteDc {
        dc: theirs,
        addr: tcp(2)
    }));
    // Named again before the grace ends: kept.
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let p = e.next_work(0).unwrap();
    e.discovery_done(
        p,
        Outcome {
            referrals: vec![referral(tcp(2))],
            ..ok(None)
        },
        0,
        &mut out,
    );
    e.handle(Input::Rescan, 1, &mut out);
    while let Some(id) = e.next_work(1) {
        e.discovery_done(id, ok(None), 1, &mut out);
    }
    e.handle(Input::Rescan, 2, &mut out);
    let p = e.next_work(2).unwrap();
    e.discovery_done(
        p,
        Outcome {
            referrals: vec![referral(tcp(2))],
            ..ok(None)
        },
        2,
        &mut out,
    );
    assert_eq!(
        e.slot(e.table().find(&tcp(2)).unwrap())
            .unwrap()
            .orphan_since,
        None
    );
}

#[test]
fn referrals_never_push_a_configured_address_out() {
    let mut e = persistent();
    let mut out = vec![];
    configure(&mut e, tcp(1));
    let p = e.next_work(0).unwrap();
    let refs: Vec<Referral> = (0..CAPACITY as u32)
        .map(|i| {
            referral(
                TransportAddr::new(
                    Transport::Tcp,
                    &format!("10.9.{}.{}", i / 200, i % 200),
                    "8009",
                    "",
                    "",
                )
                .unwrap(),
            )
        })
        .collect();
    e.discovery_done(
        p,
        Outcome {
            referrals: refs,
            ..ok(None)
        },
        0,
        &mut out,
    );
    assert_eq!(e.table().len(), CAPACITY, "referrals filled the table");
    out.clear();
    configure(&mut e, tcp(2));
    let id = e
        .table()
        .find(&tcp(2))
        .expect("a configured address gets a slot");
    assert_eq!(e.slot(id).unwrap().origin, Origin::Config);
    assert_eq!(e.table().len(), CAPACITY);
    assert!(
        e.table().find(&tcp(1)).is_some(),
        "the other configured address stays"
    );
}

#[test]
fn a_failing_entry_is_retried_alone_on_its_own_backoff() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    let key = EntryKey {
        addr: TransportAddr::new(Transport::Tcp, "192.168.1.1", "4420", "", "").unwrap(),
        subnqn: Nqn::new("nqn.2024-01.io.example:down").unwrap(),
        ask: Default::default(),
    };
    e.discovery_done(
        id,
        Outcome {
            failed_entries: vec![key],
            skipped_entries: vec![],
            ..ok(Some(dc(3, Owner::Ours)))
        },
        0,
        &mut out,
    );
    // The slot itself is fine: no re-run of the log.
    assert_eq!(e.slot(id).unwrap().state, SlotState::Idle);
    assert_eq!(e.next_work(1_000_000), None);
    assert_eq!(e.next_deadline(), Some(1000));
    assert!(e.next_entry_retry(999).is_none());
    let (rid, r) = e.next_entry_retry(1000).unwrap();
    assert_eq!((r.key, r.slot), (key, id));
    e.entry_retry_done(rid, RetryResult::Failed, 1000);
    assert_eq!(e.next_deadline(), Some(3000), "its own backoff doubles");
    let (rid, _) = e.next_entry_retry(3000).unwrap();
    e.entry_retry_done(rid, RetryResult::Done, 3000);
    assert_eq!(e.next_deadline(), None);
    assert!(!e.has_due_work(10_000_000));
    // Refused for good on a retry (excluded now, a value the kernel refuses): forgotten too.
    let id = {
        e.handle(Input::Rescan, 3500, &mut out);
        e.next_work(3500).unwrap()
    };
    e.discovery_done(
        id,
        Outcome {
            failed_entries: vec![key],
            ..ok(Some(dc(3, Owner::Ours)))
        },
        3500,
        &mut out,
    );
    let (rid, _) = e.next_entry_retry(4500).unwrap();
    e.entry_retry_done(rid, RetryResult::Dropped, 4500);
    assert!(e.next_entry_retry(10_000_000).is_none());
    // A run whose log no longer lists a failing entry forgets it.
    e.handle(Input::Rescan, 4000, &mut out);
    let id = e.next_work(4000).unwrap();
    e.discovery_done(
        id,
        Outcome {
            failed_entries: vec![key],
            skipped_entries: vec![],
            ..ok(None)
        },
        4000,
        &mut out,
    );
    assert_eq!(e.entry_retries().count(), 1);
    e.handle(Input::Rescan, 4001, &mut out);
    let id = e.next_work(4001).unwrap();
    e.discovery_done(id, ok(None), 4001, &mut out);
    assert_eq!(e.entry_retries().count(), 0);
}

#[test]
fn an_fc_address_whose_port_pair_is_gone_is_released_after_the_grace() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(Input::FcDiscovery { addr: fc() }, 0, &mut out);
    let id = e.next_work(0).unwrap();
    e.discovery_done(
        id,
        Outcome {
            addr_gone: true,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
            ..failed()
        },
        0,
        &mut out,
    );
    assert_eq!(e.slot(id).unwrap().orphan_since, Some(0));
    // The port comes back: the FC event clears it.
    e.handle(Input::FcDiscovery { addr: fc() }, 5, &mut out);
    assert_eq!(e.slot(id).unwrap().orphan_since, None);
    let id = e.next_work(5).unwrap();
    e.discovery_done(
        id,
        Outcome {
            addr_gone: true,
            auth_failed_entries: Vec::new(),
            auth_failed: false,
            refused: false,
            ..failed()
        },
        5,
        &mut out,
    );
    let grace = e.cfg.prune_grace;
    e.expire(5 + grace, &mut out);
    assert_eq!(e.table().find(&fc()), None);
}

#[test]
fn a_remove_for_a_number_two_slots_name_decides_for_each_by_identity() {
    // Found by the ownership fuzz target: ours at tcp(1) is nvme3 (identity 503); it was removed
    // and somebody else's discovery controller at tcp(2) got nvme3 (identity 900) and is in the
    // table too. The late remove of ours must end ours, not be judged by the first slot found.
    let mut e = persistent();
    let mut out = vec![];
    configure(&mut e, tcp(2));
    let theirs_slot = e.next_work(0).unwrap();
    let theirs = DiscoveryCtrl {
        ino: 900,
        ..dc(3, Owner::Foreign)
    };
    e.discovery_done(theirs_slot, ok(Some(theirs)), 0, &mut out);
    configure(&mut e, tcp(1));
    let ours_slot = e.next_work(0).unwrap();
    e.discovery_done(ours_slot, ok(Some(dc(3, Owner::Ours))), 0, &mut out);
    e.handle(
        Input::CtrlRemoved {
            instance: 3,
            current: Some(900),
        },
        1,
        &mut out,
    );
    assert_eq!(e.slot(theirs_slot).unwrap().dc, Some(theirs));
    assert_eq!(e.slot(ours_slot).unwrap().dc, None);
    assert!(e.slot(ours_slot).unwrap().pending, "ours is recreated");
}

#[test]
fn a_reload_read_after_sigterm_releases_nothing() {
    // Found by the engine fuzz target: SIGHUP after SIGTERM with --keep deleted a controller.
    let mut e = Engine::new(EngineConfig {
        persistent: true,
        keep: true,
        ..Default::default()
    });
    let mut out = vec![];
    configure(&mut e, tcp(1));
    let id = e.next_work(0).unwrap();
    e.discovery_done(id, ok(Some(dc(3, Owner::Ours))), 0, &mut out);
    out.clear();
    e.handle(Input::Terminate, 1, &mut out);
    e.handle(Input::ConfigReloading, 1, &mut out);
    e.handle(Input::ConfigReloaded, 1, &mut out);
    assert!(
        !out.iter().any(|a| matches!(a, Action::DeleteDc { .. })),
        "{out:?}"
    );
    assert_eq!(e.owned().count(), 1, "left up for the next instance");
}

/// A parent at tcp(1) naming `named` as referrals, run once at `now`.
fn parent_names(
    e: &mut Engine,
    p: SlotId,
    named: &[TransportAddr],
    now: Millis,
    out: &mut Vec<Action>,
) {
    e.discovery_done(
        p,
        Outcome {
            referrals: named.iter().map(|a| referral(*a)).collect(),
            ..ok(None)
        },
        now,
        out,
    );
}

/// Run every due slot: `logs(addr)` says which referrals each one's log names.
fn run_all(
    e: &mut Engine,
    now: Millis,
    out: &mut Vec<Action>,
    logs: impl Fn(&TransportAddr) -> Vec<TransportAddr>,
) {
    while let Some(id) = e.next_work(now) {
        let a = e.slot(id).unwrap().addr;
        parent_names(e, id, &logs(&a), now, out);
    }
}

#[test]
fn a_dropped_cycle_of_referrals_is_pruned() {
    // Two ports of one discovery subsystem name each other; the configured parent stops naming them.
    let mut e = persistent();
    let mut out = vec![];
    configure(&mut e, tcp(1));
    let both = |a: &TransportAddr| -> Vec<TransportAddr> {
        if *a == tcp(1) {
            vec![tcp(2), tcp(3)]
        } else if *a == tcp(2) {
            vec![tcp(3)]
        } else {
            vec![tcp(2)]
        }
    };
    run_all(&mut e, 0, &mut out, both);
    e.handle(Input::Rescan, 1, &mut out);
    run_all(&mut e, 1, &mut out, |a| {
        if *a == tcp(1) { vec![] } else { both(a) }
    });
    let grace = e.cfg.prune_grace;
    e.expire(1 + grace, &mut out);
    assert_eq!(e.table().find(&tcp(2)), None, "cycle member 2 released");
    assert_eq!(e.table().find(&tcp(3)), None, "cycle member 3 released");
    assert!(e.table().find(&tcp(1)).is_some());
}

#[test]
fn an_adopted_referral_needs_a_parent_to_name_it_again() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(
        Input::Existing {
            addr: tcp(2),
            dc: dc(4, Owner::Adopted),
            origin: Origin::Referral,
        },
        0,
        &mut out,
    );
    let r = e.table().find(&tcp(2)).unwrap();
    assert_eq!(e.slot(r).unwrap().orphan_since, Some(0));
    // Its parent is configured here and names it: kept.
    configure(&mut e, tcp(1));
    run_all(&mut e, 1, &mut out, |a| {
        if *a == tcp(1) { vec![tcp(2)] } else { vec![] }
    });
    assert_eq!(e.slot(r).unwrap().orphan_since, None);
}

#[test]
fn a_configured_address_first_seen_as_a_temporary_referral_becomes_persistent() {
    let mut e = persistent();
    let mut out = vec![];
    configure(&mut e, tcp(1));
    let p = e.next_work(0).unwrap();
    e.discovery_done(
        p,
        Outcome {
            referrals: vec![Referral {
                addr: tcp(2),
                persistent_ok: false,
                dc_nqn: Nqn::new("nqn.2024-01.io.example:unique").unwrap(),
                tls: false,
            }],
            ..ok(None)
        },
        0,
        &mut out,
    );
    configure(&mut e, tcp(2));
    let s = e.slot(e.table().find(&tcp(2)).unwrap()).unwrap();
    assert!(!s.temporary && s.dc_nqn.is_empty() && s.origin == Origin::Config);
}

#[test]
fn a_removed_line_that_a_log_still_names_stays_as_a_referral_with_its_parents_options() {
    let mut e = persistent();
    let mut out = vec![];
    e.handle(
        Input::Configured {
            addr: tcp(1),
            opts: OptsRef::Source(0),
        },
        0,
        &mut out,
    );
    e.handle(
        Input::Configured {
            addr: tcp(2),
            opts: OptsRef::Source(1),
        },
        0,
        &mut out,
    );
    let names = |a: &TransportAddr| {
        if *a == tcp(1) {
            vec![tcp(2), tcp(3)]
        } else {
            vec![]
        }
    };
    run_all(&mut e, 0, &mut out, names);
    // The reload keeps only tcp(1), now as the first line.
    out.clear();
    e.handle(Input::ConfigReloading, 1, &mut out);
    e.handle(
        Input::Configured {
            addr: tcp(1),
            opts: OptsRef::Source(7),
        },
        1,
        &mut out,
    );
    e.handle(Input::ConfigReloaded, 1, &mut out);
    assert!(
        !out.iter().any(|a| matches!(a, Action::DeleteDc { .. })),
        "{out:?}"
    );
    let two = e
        .table()
        .find(&tcp(2))
        .expect("still named by tcp(1)'s log");
    assert_eq!(e.slot(two).unwrap().origin, Origin::Referral);
    // The parent's next run hands both referrals the parent's (new) options again.
    run_all(&mut e, 1, &mut out, names);
    for a in [tcp(2), tcp(3)] {
        let s = e.slot(e.table().find(&a).unwrap()).unwrap();
        assert_eq!(s.opts, OptsRef::Source(7), "{a}");
        assert_eq!(s.orphan_since, None);
    }
}

#[test]
fn a_rerun_leaves_a_failing_entry_in_its_own_backoff_alone() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    let key = EntryKey {
        addr: TransportAddr::new(Transport::Tcp, "192.168.1.1", "4420", "", "").unwrap(),
        subnqn: Nqn::new("nqn.2024-01.io.example:down").unwrap(),
        ask: Default::default(),
    };
    e.discovery_done(
        id,
        Outcome {
            failed_entries: vec![key],
            ..ok(None)
        },
        0,
        &mut out,
    );
    assert_eq!(e.entries_waiting(id, 500), vec![key]);
    assert!(e.entries_waiting(id, 1000).is_empty(), "due at 1000");
    // An AEN storm re-runs the log at 500: the entry was skipped, and keeps its record as it was.
    e.handle(Input::Rescan, 500, &mut out);
    let id = e.next_work(500).unwrap();
    e.discovery_done(
        id,
        Outcome {
            skipped_entries: vec![key],
            ..ok(None)
        },
        500,
        &mut out,
    );
    let r: Vec<_> = e.entry_retries().copied().collect();
    assert_eq!((r.len(), r[0].failures, r[0].at), (1, 1, 1000));
}

#[test]
fn a_discovery_controller_without_epcsd_is_polled_not_kept() {
    let mut e = Engine::new(EngineConfig {
        persistent: true,
        epcsd_poll: 900_000,
        ..Default::default()
    });
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let a = e.next_work(0).unwrap();
    let refs = vec![Referral {
        addr: tcp(2),
        persistent_ok: false,
        dc_nqn: Nqn::new("nqn.2024-01.io.example:unique-dc").unwrap(),
        tls: false,
    }];
    let mut parent = ok(Some(dc(1, Owner::Ours)));
    parent.referrals = refs.clone();
    e.discovery_done(a, parent, 1, &mut out);
    let r = e.next_work(2).unwrap();
    assert_eq!(e.slot(r).unwrap().addr, tcp(2));
    // Read once, its temporary controller deleted by the run: polled again after the interval.
    e.discovery_done(r, ok(None), 2, &mut out);
    assert_eq!(e.next_work(3), None);
    assert_eq!(e.next_deadline(), Some(900_002));
    assert_eq!(e.next_work(900_001), None);
    assert_eq!(e.next_work(900_002), Some(r), "the poll is due");
    e.discovery_done(r, ok(None), 900_003, &mut out);
    // The parent's AEN (a new reason to look) cuts the wait short; the parent's rerun names it again.
    e.handle(
        Input::LogChanged {
            instance: 1,
            ino: 0,
            addr: tcp(1),
        },
        900_004,
        &mut out,
    );
    assert_eq!(e.next_work(900_004), Some(a));
    let mut parent = ok(Some(dc(1, Owner::Ours)));
    parent.referrals = refs;
    e.discovery_done(a, parent, 900_005, &mut out);
    assert_eq!(
        e.next_work(900_005),
        Some(r),
        "read again with the log that names it"
    );
    // Without --persistent nothing is polled: --once and plain runs end.
    let mut e = Engine::new(EngineConfig::default());
    configure(&mut e, tcp(1));
    let a = e.next_work(0).unwrap();
    let mut parent = ok(None);
    parent.referrals = vec![Referral {
        addr: tcp(2),
        persistent_ok: false,
        dc_nqn: Nqn::EMPTY,
        tls: false,
    }];
    e.discovery_done(a, parent, 1, &mut out);
    let r = e.next_work(2).unwrap();
    e.discovery_done(r, ok(None), 2, &mut out);
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn temporaries_naming_each_other_do_not_run_for_ever() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let temp = |a| Referral {
        addr: a,
        persistent_ok: false,
        dc_nqn: Nqn::EMPTY,
        tls: false,
    };
    let a = e.next_work(0).unwrap();
    let mut parent = ok(Some(dc(1, Owner::Ours)));
    parent.referrals = vec![temp(tcp(2))];
    e.discovery_done(a, parent, 1, &mut out);
    let mut runs = 0;
    let mut now = 2;
    while let Some(id) = e.next_work(now) {
        runs += 1;
        assert!(runs < 10, "a referral loop of temporaries keeps running");
        let addr = e.slot(id).unwrap().addr;
        let mut o = ok(None);
        o.referrals = if addr == tcp(2) {
            vec![temp(tcp(3))]
        } else {
            vec![temp(tcp(2))]
        };
        e.discovery_done(id, o, now, &mut out);
        now += 1;
    }
    assert_eq!(runs, 2, "each temporary read once");
}

#[test]
fn a_parents_run_does_not_cut_a_failing_temporarys_backoff() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let temp = Referral {
        addr: tcp(2),
        persistent_ok: false,
        dc_nqn: Nqn::EMPTY,
        tls: false,
    };
    let a = e.next_work(0).unwrap();
    let mut parent = ok(Some(dc(1, Owner::Ours)));
    parent.referrals = vec![temp];
    e.discovery_done(a, parent, 1, &mut out);
    let t = e.next_work(2).unwrap();
    // Its port is black-holed: the run fails and waits its backoff.
    e.discovery_done(t, failed(), 2, &mut out);
    for now in 3..8 {
        e.handle(
            Input::LogChanged {
                instance: 1,
                ino: 0,
                addr: tcp(1),
            },
            now,
            &mut out,
        );
        assert_eq!(
            e.next_work(now),
            Some(a),
            "the parent's AEN runs the parent"
        );
        let mut parent = ok(Some(dc(1, Owner::Ours)));
        parent.referrals = vec![temp];
        e.discovery_done(a, parent, now, &mut out);
        assert_eq!(
            e.next_work(now),
            None,
            "an AEN storm on the parent must not retry it"
        );
    }
    assert_eq!(e.next_work(1_002), Some(t), "its own backoff ends");
}

fn direct(e: &mut Engine, addr: TransportAddr, nqn: &str, opts: OptsRef) -> Vec<Action> {
    let mut out = vec![];
    e.handle(
        Input::ConfiguredSubsystem {
            addr,
            subsystem: Nqn::new(nqn).unwrap(),
            opts,
        },
        0,
        &mut out,
    );
    out
}

#[test]
fn a_direct_subsystem_is_its_own_slot_kept_connected_and_released_without_a_delete() {
    const A: &str = "nqn.2024-01.io.example:a";
    const B: &str = "nqn.2024-01.io.example:b";
    let mut e = persistent();
    let mut out = vec![];
    // The same address as a discovery line, and two subsystems there: three slots.
    configure(&mut e, tcp(1));
    direct(&mut e, tcp(1), A, OptsRef::Source(1));
    direct(&mut e, tcp(1), B, OptsRef::Source(2));
    direct(&mut e, tcp(1), A, OptsRef::Source(1));
    assert_eq!(e.table().len(), 3, "one slot per subsystem and address");
    let mut ran = vec![];
    while let Some(id) = e.next_work(0) {
        let s = *e.slot(id).unwrap();
        ran.push(s.subsystem.as_str().to_owned());
        let dc = (!s.is_direct()).then(|| dc(1, Owner::Ours));
        e.discovery_done(id, ok(dc), 10, &mut out);
    }
    ran.sort();
    assert_eq!(ran, ["", A, B], "each ran once");
    // A failing connect backs off like a discovery.
    direct(&mut e, tcp(1), A, OptsRef::Source(1));
    let a = e.next_work(20).unwrap();
    e.discovery_done(a, failed(), 30, &mut out);
    assert!(matches!(
        e.slot(a).unwrap().state,
        SlotState::WaitRetry { .. }
    ));
    // Any controller that goes may have been one of them: the idle one checks again, the
    // failing one keeps its backoff; the discovery slot's controller is not touched.
    e.handle(
        Input::CtrlRemoved {
            instance: 7,
            current: None,
        },
        40,
        &mut out,
    );
    let due: Vec<SlotId> = std::iter::from_fn(|| {
        let id = e.next_work(40)?;
        e.discovery_done(id, ok(None), 41, &mut out);
        Some(id)
    })
    .collect();
    let b = e
        .table()
        .find_subsystem(&tcp(1), &Nqn::new(B).unwrap())
        .unwrap();
    assert_eq!(due, [b]);
    assert!(
        e.table()
            .find(&tcp(1))
            .and_then(|id| e.slot(id)?.dc)
            .is_some()
    );
    // An AEN from the address reaches the discovery slot, never a direct one.
    out.clear();
    e.handle(
        Input::LogChanged {
            instance: 1,
            ino: 501,
            addr: tcp(1),
        },
        50,
        &mut out,
    );
    assert_eq!(e.next_work(50), e.table().find(&tcp(1)));
    e.discovery_done(
        e.table().find(&tcp(1)).unwrap(),
        ok(Some(dc(1, Owner::Ours))),
        51,
        &mut out,
    );
    // A reload that names only B: A goes, nothing is deleted for it.
    out.clear();
    e.handle(Input::ConfigReloading, 60, &mut out);
    configure(&mut e, tcp(1));
    direct(&mut e, tcp(1), B, OptsRef::Source(0));
    e.handle(Input::ConfigReloaded, 60, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.table().len(), 2);
    assert!(
        e.table()
            .find_subsystem(&tcp(1), &Nqn::new(A).unwrap())
            .is_none()
    );
    assert_eq!(
        e.slot(b).unwrap().opts,
        OptsRef::Source(0),
        "the reload's options"
    );
    // At exit only the discovery controller is deleted.
    e.handle(Input::Terminate, 70, &mut out);
    let deleted: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            Action::DeleteDc { dc, .. } => Some(dc.instance),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [1]);
}

#[test]
fn configured_subsystems_come_first_each_with_its_own_line_options() {
    use crate::config::DiscoverySource;
    let src = |addr: TransportAddr, nqn: &str| DiscoverySource {
        addr,
        opts: Default::default(),
        persistent: false,
        subsystem: Nqn::new(nqn).unwrap(),
        explicit: false,
    };
    let ours = "nqn.2014-08.org.nvmexpress:uuid:ours";
    let mut named = tcp(2);
    named.hostnqn = Nqn::new(ours).unwrap();
    let sources = [src(tcp(1), ""), src(named, "nqn.2024-01.io.example:d")];
    let inputs: Vec<Input> = configured_inputs(&sources, ours).collect();
    assert_eq!(
        inputs,
        [
            Input::ConfiguredSubsystem {
                addr: tcp(2),
                subsystem: Nqn::new("nqn.2024-01.io.example:d").unwrap(),
                opts: OptsRef::Source(1),
            },
            Input::Configured {
                addr: tcp(1),
                opts: OptsRef::Source(0),
            },
        ],
        "our own host NQN on a line is the default host"
    );
}

fn nbft(e: &mut Engine, addr: TransportAddr, nqn: &str) -> Vec<Action> {
    let mut out = vec![];
    e.handle(
        Input::Nbft {
            addr,
            subsystem: Nqn::new(nqn).unwrap(),
            opts: OptsRef::Source(0),
        },
        0,
        &mut out,
    );
    out
}

fn deleted(out: &[Action]) -> Vec<u32> {
    let mut v: Vec<u32> = out
        .iter()
        .filter_map(|a| match a {
            Action::DeleteDc { dc, .. } => Some(dc.instance),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn nbft_discovery_controllers_outlive_us_without_keep_and_survive_reloads() {
    let mut e = persistent();
    let mut out = vec![];
    configure(&mut e, tcp(1));
    nbft(&mut e, tcp(2), "");
    // The same address in discovery.conf too: the firmware's claim is not weakened by it.
    nbft(&mut e, tcp(3), "");
    configure(&mut e, tcp(3));
    for i in 0..3 {
        let id = e.next_work(0).unwrap();
        e.discovery_done(id, ok(Some(dc(i, Owner::Ours))), 0, &mut out);
    }
    for a in [tcp(2), tcp(3)] {
        let s = e.slot(e.table().find(&a).unwrap()).unwrap();
        assert_eq!(s.origin, Origin::Nbft, "{a}");
    }
    // A reload whose file names none of them releases the configured one only.
    out.clear();
    e.handle(Input::ConfigReloading, 1, &mut out);
    e.handle(Input::ConfigReloaded, 1, &mut out);
    assert_eq!(
        deleted(&out),
        vec![0],
        "only tcp(1), which the file no longer names"
    );
    assert!(e.table().find(&tcp(2)).is_some() && e.table().find(&tcp(3)).is_some());
    // Nothing prunes them however long nothing names them.
    e.expire(u64::MAX / 2, &mut out);
    assert!(e.table().find(&tcp(2)).is_some());
    // SIGTERM without --keep: ours are deleted, the NBFT ones stay and stay in the state file.
    configure(&mut e, tcp(4));
    let id = e.next_work(2).unwrap();
    e.discovery_done(id, ok(Some(dc(9, Owner::Ours))), 2, &mut out);
    out.clear();
    e.handle(Input::Terminate, 3, &mut out);
    assert_eq!(deleted(&out), vec![9]);
    let mut kept: Vec<(u32, Origin)> = e.owned().map(|(_, d, o)| (d.instance, o)).collect();
    kept.sort_by_key(|k| k.0);
    assert_eq!(kept, vec![(1, Origin::Nbft), (2, Origin::Nbft)]);
}

#[test]
fn nbft_paths_are_never_evicted_and_take_a_full_tables_unconfigured_slot() {
    let mut e = persistent();
    let mut out = vec![];
    for i in 0..CAPACITY as u32 - 1 {
        e.handle(
            Input::FcDiscovery {
                addr: TransportAddr::new(
                    Transport::Fc,
                    &format!("nn-0x1000000000{i:06x}:pn-0x2000000000{i:06x}"),
                    "",
                    "nn-0x10001100aa000001:pn-0x20001100aa000001",
                    "",
                )
                .unwrap(),
            },
            0,
            &mut out,
        );
    }
    nbft(&mut e, tcp(1), "nqn.2024-01.io.example:boot");
    assert_eq!(e.table().len(), CAPACITY);
    // Full: an NBFT path pushes out an FC one, a configured line can never push out an NBFT path.
    nbft(&mut e, tcp(2), "");
    assert!(e.table().find(&tcp(2)).is_some());
    for i in 10..(10 + CAPACITY as u32) {
        configure(&mut e, tcp(i));
    }
    assert!(
        e.table().find(&tcp(2)).is_some(),
        "the NBFT discovery address stays"
    );
    let boot = Nqn::new("nqn.2024-01.io.example:boot").unwrap();
    assert!(e.table().find_subsystem(&tcp(1), &boot).is_some());
}

#[test]
fn the_network_coming_up_cuts_only_the_backoffs_of_paths_through_it() {
    let mut e = persistent();
    let via = |i: u32, host_traddr: &str, iface: &str| {
        TransportAddr::new(
            Transport::Tcp,
            &format!("10.99.0.{i}"),
            "4420",
            host_traddr,
            iface,
        )
        .unwrap()
    };
    let mut out = vec![];
    let paths = [
        via(1, "10.99.1.5", "nbft0"),
        via(2, "10.99.2.5", "nbft1"),
        via(3, "", "nbft1"),
        via(4, "fe80::1", ""),
    ];
    for a in paths {
        nbft(&mut e, a, "nqn.2024-01.io.example:boot");
    }
    for _ in 0..paths.len() {
        let id = e.next_work(0).unwrap();
        e.discovery_done(id, failed(), 0, &mut out);
    }
    assert_eq!(e.next_work(1), None, "all four back off");
    let ready = |iface: &str, ip: Option<&str>| Input::NetworkReady {
        host_iface: crate::addr::FixedStr::new(iface).unwrap(),
        host_traddr: ip.map(|i| i.parse().unwrap()),
    };
    e.handle(ready("nbft1", Some("10.99.2.5")), 5, &mut out);
    let mut woken = vec![];
    while let Some(id) = e.next_work(5) {
        woken.push(e.slot(id).unwrap().addr);
        e.discovery_done(id, ok(None), 5, &mut out);
    }
    assert_eq!(
        woken,
        vec![paths[1], paths[2]],
        "nbft1's paths, in queue order"
    );
    // An IPv6 address written another way is the same address.
    e.handle(ready("", Some("fe80:0::0:1")), 6, &mut out);
    assert_eq!(
        e.next_work(6).map(|id| e.slot(id).unwrap().addr),
        Some(paths[3])
    );
    // A path that is not backing off is not run again for nothing.
    e.handle(ready("nbft1", None), 7, &mut out);
    assert_eq!(e.next_work(7), None);
}

#[test]
fn a_long_outage_is_not_taken_for_an_authentication_failure() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let cfg = EngineConfig::default();
    let mut now = 0;
    // 40 ordinary failures (more than half an hour at the cap): the delay stays at the cap, it
    // does not start over at the base.
    for n in 1..=40u32 {
        let id = e.next_work(now).expect("due");
        e.discovery_done(id, failed(), now, &mut out);
        let SlotState::WaitRetry { at } = e.slot(id).unwrap().state else {
            panic!("not waiting after failure {n}");
        };
        assert_eq!(at - now, backoff(&cfg, n), "failure {n}");
        now = at;
    }
    // Then the key is refused: the long wait, from the first refusal on.
    let id = e.next_work(now).expect("due");
    e.discovery_done(
        id,
        Outcome {
            auth_failed: true,
            refused: false,
            ..failed()
        },
        now,
        &mut out,
    );
    assert_eq!(
        e.slot(id).unwrap().state,
        SlotState::WaitRetry {
            at: now + cfg.auth_retry
        }
    );
    assert!(e.slot(id).unwrap().auth_failing);
}

#[test]
fn a_referral_reached_over_tls_keeps_it_until_configuration_names_the_address() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let a = e.next_work(0).unwrap();
    let mut parent = ok(Some(dc(1, Owner::Ours)));
    parent.referrals = vec![Referral {
        tls: true,
        ..referral(tcp(2))
    }];
    e.discovery_done(a, parent, 0, &mut out);
    let r = e.table().find(&tcp(2)).expect("the referral has a slot");
    assert!(e.slot(r).unwrap().tls);
    // Named by the configuration now: its own options decide.
    e.handle(
        Input::Configured {
            addr: tcp(2),
            opts: OptsRef::Global,
        },
        1,
        &mut out,
    );
    assert!(!e.slot(r).unwrap().tls);
}

#[test]
fn an_adopted_referral_learns_from_its_parent_that_it_is_reached_over_tls() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    e.handle(
        Input::Existing {
            addr: tcp(2),
            dc: dc(7, Owner::Ours),
            origin: Origin::Referral,
        },
        0,
        &mut out,
    );
    let r = e.table().find(&tcp(2)).unwrap();
    assert!(!e.slot(r).unwrap().tls, "the state file does not say");
    let a = e.table().find(&tcp(1)).unwrap();
    while let Some(id) = e.next_work(0) {
        let mut o = ok(Some(dc(if id == a { 1 } else { 7 }, Owner::Ours)));
        if id == a {
            o.referrals = vec![Referral {
                tls: true,
                ..referral(tcp(2))
            }];
        }
        e.discovery_done(id, o, 0, &mut out);
    }
    assert!(e.slot(r).unwrap().tls);
}

#[test]
fn a_refusal_of_ours_marks_the_slot_until_it_fails_otherwise_or_works() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let refused = || Outcome {
        refused: true,
        ..failed()
    };
    let mut now = 0;
    for (outcome, refusing) in [(refused(), true), (refused(), true), (failed(), false)] {
        let id = e.next_work(now).expect("due");
        e.discovery_done(id, outcome, now, &mut out);
        assert_eq!(e.slot(id).unwrap().refusing, refusing);
        now = e.next_deadline().unwrap();
    }
    let id = e.next_work(now).expect("due");
    e.discovery_done(id, refused(), now, &mut out);
    now = e.next_deadline().unwrap();
    let id = e.next_work(now).expect("due");
    e.discovery_done(id, ok(Some(dc(3, Owner::Ours))), now, &mut out);
    assert!(!e.slot(id).unwrap().refusing);
}

/// Slot `id`'s run at time 0 read a log whose entry `key` refused our key.
fn key_refused(e: &mut Engine, id: SlotId, key: EntryKey, out: &mut Vec<Action>) {
    let outcome = Outcome {
        failed_entries: vec![key],
        auth_failed_entries: vec![key],
        ..ok(Some(dc(3, Owner::Ours)))
    };
    e.discovery_done(id, outcome, 0, out);
}

#[test]
fn an_authentication_failure_waits_the_longest_backoff_at_once_and_clears_on_success() {
    let mut e = persistent();
    configure(&mut e, tcp(1));
    let mut out = vec![];
    let id = e.next_work(0).unwrap();
    let key = EntryKey {
        addr: TransportAddr::new(Transport::Tcp, "192.168.1.1", "4420", "", "").unwrap(),
        subnqn: Nqn::new("nqn.2024-01.io.example:locked").unwrap(),
        ask: Default::default(),
    };
    let cap = EngineConfig::default().auth_retry;
    key_refused(&mut e, id, key, &mut out);
    assert_eq!(
        e.next_deadline(),
        Some(cap),
        "no 1 s, 2 s, 4 s... for a rejected key"
    );
    // A reload may bring the right key: the rediscovery that follows tries it (it is not
    // among the entries still waiting), and it fails again here: the same long wait.
    e.handle(Input::ConfigReloading, 0, &mut out);
    assert!(e.entries_waiting(id, 0).is_empty());
    configure(&mut e, tcp(1));
    e.handle(Input::ConfigReloaded, 0, &mut out);
    let id = e.next_work(0).unwrap();
    key_refused(&mut e, id, key, &mut out);
    assert_eq!(e.next_deadline(), Some(cap));
    assert_eq!(e.auth_failing_entries(), [key]);
    let (rid, _) = e.next_entry_retry(cap).unwrap();
    e.entry_retry_done(rid, RetryResult::AuthFailed, cap);
    assert_eq!(e.next_deadline(), Some(2 * cap));
    // It fails for another reason now: the ordinary backoff starts over.
    let (rid, _) = e.next_entry_retry(2 * cap).unwrap();
    e.entry_retry_done(rid, RetryResult::Failed, 2 * cap);
    assert!(e.auth_failing_entries().is_empty());
    let base = EngineConfig::default().retry_base;
    assert_eq!(e.next_deadline(), Some(2 * cap + base));
    let (rid, _) = e.next_entry_retry(3 * cap).unwrap();
    e.entry_retry_done(rid, RetryResult::Done, 3 * cap);
    assert_eq!(e.next_deadline(), None);

    // The slot's own connect (a direct subsystem, a discovery controller) refused: the same.
    e.handle(Input::Rescan, 4 * cap, &mut out);
    let id = e.next_work(4 * cap).unwrap();
    e.discovery_done(
        id,
        Outcome {
            auth_failed: true,
            refused: false,
            ..failed()
        },
        4 * cap,
        &mut out,
    );
    assert_eq!(
        e.slot(id).unwrap().state,
        SlotState::WaitRetry { at: 5 * cap }
    );
    // A failure of another kind starts the count over (1 s), not from the cap.
    e.handle(Input::Rescan, 5 * cap, &mut out);
    let id = e.next_work(5 * cap).unwrap();
    e.discovery_done(id, failed(), 5 * cap, &mut out);
    assert_eq!(
        e.slot(id).unwrap().state,
        SlotState::WaitRetry {
            at: 5 * cap + EngineConfig::default().retry_base
        }
    );
}
