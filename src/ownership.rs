//! Whose controller is it: every ours / foreign / reuse / adopt / stale-remove / may-delete decision,
//! made over plain facts (what sysfs shows, what we recorded), with no I/O.
//!
//! The identity of a controller is its instance number together with the kernfs inode number of
//! its sysfs directory ([`crate::sysfs::Sysfs::identity`] says why the kernel does not reuse the
//! latter within a boot). The cntlid is not identity: a reset or reconnect may change it. A bare
//! `nvmeN` proves nothing: the kernel gives a freed number to the next controller at once.

use crate::addr::TransportAddr;
use crate::state::StateEntry;
use crate::sysfs::{self, Controller, CtrlState};
use crate::table::{DiscoveryCtrl, Owner};

/// Is `c`, what sysfs shows under `dc.instance` now, still the discovery controller `dc` we
/// recorded for `addr`? `Err` says why not, for a log line.
pub fn same_dc(
    c: &Controller,
    dc: &DiscoveryCtrl,
    addr: &TransportAddr,
) -> std::result::Result<(), String> {
    if c.instance != dc.instance {
        return Err(format!("{} is not nvme{}", c.name, dc.instance));
    }
    if let Some(owner) = &c.claimed_by {
        return Err(format!("{} is registered to {owner}", c.name));
    }
    if dc.ino != 0 && c.ino != dc.ino {
        return Err(format!(
            "{} is another controller now (identity {}, we recorded {})",
            c.name, c.ino, dc.ino
        ));
    }
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
    if dc.ino == 0 && dc.owner.is_ours() {
        // No identity recorded (a version-1 state file): the old, weaker proof. A reset may have
        // changed the cntlid, and then we let the controller go rather than risk deleting
        // somebody else's.
        if c.cntlid != Some(dc.cntlid) {
            let now = c.cntlid.map_or("unknown".to_owned(), |n| n.to_string());
            return Err(format!(
                "{} has cntlid {now}, we recorded {} (and no identity)",
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

/// What a `remove` uevent for /dev/nvme`dc.instance` means for the controller we recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Our controller is gone (the name is free, or already another controller's).
    Gone,
    /// The event was for an earlier holder of the number; ours is still there.
    Stale,
}

/// `current`: the identity sysfs shows under that name now (`None`: no such controller, `Some(0)`:
/// it could not be read).
pub fn removal(dc: &DiscoveryCtrl, current: Option<u64>) -> Removal {
    match current {
        None => Removal::Gone,
        // 0: sysfs could not say; never a reason to drop ours.
        Some(0) => Removal::Stale,
        Some(ino) if dc.ino != 0 && ino != dc.ino => Removal::Gone,
        // Same identity, or none recorded to compare with: a controller by that name is up, and
        // the next run checks it before using it.
        Some(_) => Removal::Stale,
    }
}

/// May we delete `c` as our discovery controller `dc` at `addr`?
pub fn may_delete(
    c: &Controller,
    dc: &DiscoveryCtrl,
    addr: &TransportAddr,
) -> std::result::Result<(), String> {
    if !dc.owner.is_ours() {
        return Err(format!("{} is not ours ({})", c.name, dc.owner.name()));
    }
    same_dc(c, dc, addr)
}

/// Adopt a controller the previous instance handed over in its state file, if sysfs (`now`: what
/// it shows under that name, or why it could not be read) still shows the same controller. The
/// recorded host NQN is the effective one: ours becomes the table's "default" (empty).
pub fn adopt(
    e: &StateEntry,
    now: std::result::Result<Controller, String>,
    our_hostnqn: &str,
) -> std::result::Result<(TransportAddr, DiscoveryCtrl), String> {
    let c = now?;
    let addr = e.addr.with_default_host(our_hostnqn);
    let recorded = DiscoveryCtrl {
        instance: e.instance,
        owner: Owner::Adopted,
        cntlid: e.cntlid,
        subsysnqn: e.subsysnqn,
        ino: e.ino,
    };
    same_dc(&c, &recorded, &addr)?;
    // From now on it is known by what sysfs shows: a version-1 entry gains its identity here.
    Ok((addr, dc_of(&c, Owner::Adopted)))
}

/// The controller a `creating` entry (see [`StateEntry::creating`]) became, if the kernel made it
/// before the previous instance died: the first discovery controller at the address, for the
/// same host, with an identity above the one recorded, that nothing else claims (`claimed`: the
/// identities already adopted).
pub fn adopt_creating(
    e: &StateEntry,
    ctrls: &[Controller],
    claimed: &[u64],
    our_hostnqn: &str,
) -> Option<(TransportAddr, DiscoveryCtrl)> {
    let addr = e.addr.with_default_host(our_hostnqn);
    let hostnqn = if addr.hostnqn.is_empty() {
        our_hostnqn
    } else {
        addr.hostnqn.as_str()
    };
    // Only the first one made after the intent can be ours; if something already claims it, a
    // later one is somebody else's.
    ctrls
        .iter()
        .filter(|c| {
            c.is_discovery()
                && !c.state.is_going_away()
                && c.claimed_by.is_none()
                && c.ino > e.ino
                && sysfs::matches(c, &addr, &c.subsysnqn, hostnqn)
        })
        .min_by_key(|c| c.ino)
        .filter(|c| !claimed.contains(&c.ino))
        .map(|c| (addr, dc_of(c, Owner::Adopted)))
}

/// The discovery controller a run should use, as decided from what sysfs shows.
// Made once per run and matched at once: boxing would allocate for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcChoice {
    /// Read this one's log.
    Use(DiscoveryCtrl),
    /// The right controller is there but the kernel is reconnecting it (named): wait for its
    /// `rediscover`, do not create a duplicate.
    Reconnecting(String, CtrlState),
    /// None usable: create one of ours.
    Create,
}

/// The recorded controller if sysfs still shows it (`recorded_now`: what sysfs shows under its
/// name now), else an existing discovery controller at the address (somebody else's: used, never
/// deleted), else a new one.
pub fn choose_dc(
    recorded: Option<&DiscoveryCtrl>,
    recorded_now: Option<&Controller>,
    ctrls: &[Controller],
    addr: &TransportAddr,
    hostnqn: &str,
) -> (DcChoice, Option<String>) {
    let mut why_not = None;
    if let (Some(dc), Some(c)) = (recorded, recorded_now) {
        match same_dc(c, dc, addr) {
            Ok(()) if c.state == CtrlState::Live => {
                return (DcChoice::Use(dc_of(c, dc.owner)), None);
            }
            Ok(()) => return (DcChoice::Reconnecting(c.name.clone(), c.state), None),
            Err(why) => why_not = Some(why),
        }
    } else if let Some(dc) = recorded {
        why_not = Some(format!("nvme{} is gone", dc.instance));
    }
    // Another orchestrator's discovery controller is theirs alone (nvme-cli 3's registry): we make
    // our own beside it (the kernel allows duplicate discovery controllers).
    let existing = ctrls.iter().find(|c| {
        c.is_discovery()
            && !c.state.is_going_away()
            && c.claimed_by.is_none()
            && sysfs::matches(c, addr, &c.subsysnqn, hostnqn)
    });
    match existing {
        Some(c) if c.state != CtrlState::Live => {
            (DcChoice::Reconnecting(c.name.clone(), c.state), why_not)
        }
        Some(c) => (DcChoice::Use(dc_of(c, Owner::Foreign)), why_not),
        None => (DcChoice::Create, why_not),
    }
}

/// What we record of controller `c`.
pub fn dc_of(c: &Controller, owner: Owner) -> DiscoveryCtrl {
    DiscoveryCtrl {
        instance: c.instance,
        owner,
        cntlid: c.cntlid.unwrap_or(0),
        subsysnqn: crate::addr::Nqn::new(&c.subsysnqn).unwrap_or_default(),
        ino: c.ino,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{Nqn, Transport};
    use crate::fabrics::DISCOVERY_NQN;

    fn ctrl(instance: u32, ino: u64, cntlid: u16, state: CtrlState, traddr: &str) -> Controller {
        Controller {
            name: format!("nvme{instance}"),
            instance,
            transport: Transport::Tcp,
            traddr: traddr.into(),
            trsvcid: "8009".into(),
            host_traddr: String::new(),
            host_iface: String::new(),
            src_addr: "10.0.0.100".into(),
            subsysnqn: DISCOVERY_NQN.into(),
            state,
            cntrltype: "discovery".into(),
            hostnqn: "nqn.2014-08.org.nvmexpress:uuid:1".into(),
            cntlid: Some(cntlid),
            ino,
            claimed_by: None,
        }
    }

    fn addr(traddr: &str) -> TransportAddr {
        TransportAddr::new(Transport::Tcp, traddr, "8009", "", "").unwrap()
    }

    fn ours(instance: u32, ino: u64, cntlid: u16) -> DiscoveryCtrl {
        DiscoveryCtrl {
            instance,
            owner: Owner::Ours,
            cntlid,
            subsysnqn: Nqn::new(DISCOVERY_NQN).unwrap(),
            ino,
        }
    }

    #[test]
    fn a_reset_that_changes_the_cntlid_keeps_our_controller() {
        let dc = ours(3, 900, 1);
        let after_reset = ctrl(3, 900, 7, CtrlState::Live, "10.0.0.1");
        assert_eq!(same_dc(&after_reset, &dc, &addr("10.0.0.1")), Ok(()));
        assert_eq!(may_delete(&after_reset, &dc, &addr("10.0.0.1")), Ok(()));
        // Reconnecting is still ours, not usable yet.
        let reconnecting = ctrl(3, 900, 7, CtrlState::Connecting, "10.0.0.1");
        assert_eq!(same_dc(&reconnecting, &dc, &addr("10.0.0.1")), Ok(()));
    }

    #[test]
    fn a_reused_number_is_another_controller_even_with_everything_else_equal() {
        // Same number, address, cntlid and NQN (nvmet reuses cntlids): only the identity differs.
        let dc = ours(3, 900, 1);
        let reused = ctrl(3, 901, 1, CtrlState::Live, "10.0.0.1");
        assert!(same_dc(&reused, &dc, &addr("10.0.0.1")).is_err());
        assert!(may_delete(&reused, &dc, &addr("10.0.0.1")).is_err());
    }

    #[test]
    fn without_an_identity_the_cntlid_still_guards() {
        let dc = ours(3, 0, 1);
        assert_eq!(
            same_dc(
                &ctrl(3, 5, 1, CtrlState::Live, "10.0.0.1"),
                &dc,
                &addr("10.0.0.1")
            ),
            Ok(())
        );
        assert!(
            same_dc(
                &ctrl(3, 5, 2, CtrlState::Live, "10.0.0.1"),
                &dc,
                &addr("10.0.0.1")
            )
            .is_err()
        );
    }

    #[test]
    fn other_address_io_controller_or_going_away_is_not_ours() {
        let dc = ours(3, 900, 1);
        assert!(
            same_dc(
                &ctrl(3, 900, 1, CtrlState::Live, "10.0.0.2"),
                &dc,
                &addr("10.0.0.1")
            )
            .is_err()
        );
        let mut io = ctrl(3, 900, 1, CtrlState::Live, "10.0.0.1");
        io.subsysnqn = "nqn.2024-01.io.example:disk".into();
        io.cntrltype = "io".into();
        assert!(same_dc(&io, &dc, &addr("10.0.0.1")).is_err());
        assert!(
            same_dc(
                &ctrl(3, 900, 1, CtrlState::Deleting, "10.0.0.1"),
                &dc,
                &addr("10.0.0.1")
            )
            .is_err()
        );
    }

    #[test]
    fn foreign_is_never_deleted() {
        let mut dc = ours(3, 900, 1);
        dc.owner = Owner::Foreign;
        let c = ctrl(3, 900, 1, CtrlState::Live, "10.0.0.1");
        assert_eq!(same_dc(&c, &dc, &addr("10.0.0.1")), Ok(()));
        assert!(may_delete(&c, &dc, &addr("10.0.0.1")).is_err());
    }

    #[test]
    fn remove_events_decide_by_identity() {
        let dc = ours(3, 900, 1);
        assert_eq!(removal(&dc, None), Removal::Gone);
        // Removed, and the number given to another controller before we read the event.
        assert_eq!(removal(&dc, Some(901)), Removal::Gone);
        // A late remove of the number's earlier holder: ours is up.
        assert_eq!(removal(&dc, Some(900)), Removal::Stale);
    }

    fn entry(instance: u32, ino: u64, cntlid: u16, hostnqn: &str) -> StateEntry {
        let mut addr = addr("10.0.0.1");
        addr.hostnqn = Nqn::new(hostnqn).unwrap();
        StateEntry {
            instance,
            addr,
            cntlid,
            subsysnqn: Nqn::new(DISCOVERY_NQN).unwrap(),
            origin: crate::table::Origin::Config,
            ino,
            creating: false,
        }
    }

    #[test]
    fn adoption_checks_identity_and_takes_what_sysfs_shows() {
        let me = "nqn.2014-08.org.nvmexpress:uuid:1";
        // The initramfs instance's controller, reset since (new cntlid): adopted with the new one.
        let c = ctrl(4, 77, 9, CtrlState::Live, "10.0.0.1");
        let (a, dc) = adopt(&entry(4, 77, 1, me), Ok(c.clone()), me).unwrap();
        assert!(a.hostnqn.is_empty(), "our own host NQN is the default");
        assert_eq!((dc.owner, dc.cntlid, dc.ino), (Owner::Adopted, 9, 77));
        // The number is somebody else's now.
        assert!(adopt(&entry(4, 76, 9, me), Ok(c.clone()), me).is_err());
        // A version-1 entry: the cntlid decides, and the identity is recorded from now on.
        let (_, dc) = adopt(&entry(4, 0, 9, me), Ok(c.clone()), me).unwrap();
        assert_eq!(dc.ino, 77);
        assert!(adopt(&entry(4, 0, 1, me), Ok(c), me).is_err());
        assert!(adopt(&entry(4, 77, 1, me), Err("gone".into()), me).is_err());
    }

    #[test]
    fn a_controller_created_as_the_previous_instance_died_is_found_by_its_intent() {
        let me = "nqn.2014-08.org.nvmexpress:uuid:1";
        let mut intent = entry(0, 500, 0, me);
        intent.creating = true;
        let old = ctrl(1, 400, 1, CtrlState::Live, "10.0.0.1");
        let made = ctrl(2, 520, 1, CtrlState::Live, "10.0.0.1");
        let later = ctrl(3, 530, 1, CtrlState::Live, "10.0.0.1");
        let other = ctrl(4, 510, 1, CtrlState::Live, "10.0.0.2");
        let ctrls = [old, made.clone(), later, other];
        let (a, dc) = adopt_creating(&intent, &ctrls, &[], me).unwrap();
        assert!(a.hostnqn.is_empty());
        assert_eq!((dc.instance, dc.ino, dc.owner), (2, 520, Owner::Adopted));
        // The first one made after the intent is claimed already: a later one is somebody else's.
        assert!(adopt_creating(&intent, &ctrls, &[520], me).is_none());
        // Nothing made after the intent (the connect failed): nothing adopted.
        assert!(adopt_creating(&intent, &ctrls[..1], &[], me).is_none());
    }

    #[test]
    fn choose_prefers_the_recorded_controller_then_an_existing_one() {
        let a = addr("10.0.0.1");
        let dc = ours(3, 900, 1);
        let c = ctrl(3, 900, 4, CtrlState::Live, "10.0.0.1");
        let (choice, _) = choose_dc(Some(&dc), Some(&c), std::slice::from_ref(&c), &a, "");
        assert_eq!(choice, DcChoice::Use(dc_of(&c, Owner::Ours)));
        // Recorded one replaced by somebody else's at the same address: use it as foreign.
        let theirs = ctrl(3, 901, 1, CtrlState::Live, "10.0.0.1");
        let (choice, why) = choose_dc(
            Some(&dc),
            Some(&theirs),
            std::slice::from_ref(&theirs),
            &a,
            "",
        );
        assert_eq!(choice, DcChoice::Use(dc_of(&theirs, Owner::Foreign)));
        assert!(why.unwrap().contains("another controller"));
        // Ours is reconnecting: wait, do not create a second one.
        let rc = ctrl(3, 900, 1, CtrlState::Connecting, "10.0.0.1");
        let (choice, _) = choose_dc(Some(&dc), Some(&rc), std::slice::from_ref(&rc), &a, "");
        assert!(matches!(choice, DcChoice::Reconnecting(..)));
        // Nothing there.
        let (choice, _) = choose_dc(Some(&dc), None, &[], &a, "");
        assert_eq!(choice, DcChoice::Create);
    }

    #[test]
    fn another_orchestrators_controller_is_never_used_adopted_or_deleted() {
        let a = addr("10.0.0.1");
        let mut stas = ctrl(2, 700, 1, CtrlState::Live, "10.0.0.1");
        stas.claimed_by = Some("stas".into());
        // The only discovery controller at the address is registered to stas: make our own.
        let (choice, _) = choose_dc(None, None, std::slice::from_ref(&stas), &a, "");
        assert_eq!(choice, DcChoice::Create);
        // Recorded as ours, but now registered to another owner: not used any more, not deleted.
        let dc = ours(2, 700, 1);
        let (choice, why) = choose_dc(Some(&dc), Some(&stas), std::slice::from_ref(&stas), &a, "");
        assert_eq!(choice, DcChoice::Create);
        assert!(why.unwrap().contains("registered to stas"));
        assert!(may_delete(&stas, &dc, &a).is_err());
        // The previous instance's state file names it: not adopted.
        let e = StateEntry {
            addr: a,
            instance: 2,
            cntlid: 1,
            subsysnqn: Nqn::new(DISCOVERY_NQN).unwrap(),
            ino: 700,
            origin: crate::table::Origin::Config,
            creating: false,
        };
        assert!(adopt(&e, Ok(stas.clone()), "").is_err());
        let creating = StateEntry {
            creating: true,
            ino: 600,
            ..e
        };
        assert_eq!(
            adopt_creating(&creating, std::slice::from_ref(&stas), &[], ""),
            None
        );
        // An unowned one beside it is used as before.
        let free = ctrl(4, 800, 1, CtrlState::Live, "10.0.0.1");
        let (choice, _) = choose_dc(None, None, &[stas, free.clone()], &a, "");
        assert_eq!(choice, DcChoice::Use(dc_of(&free, Owner::Foreign)));
    }
}
