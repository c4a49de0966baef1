//! The handoff state file as the daemon keeps it: which entries (our discovery controllers, with
//! the effective host NQN), written atomically at every change, a failure said once.

use std::cell::Cell;
use std::path::PathBuf;

use crate::addr::TransportAddr;
use crate::engine::Engine;
use crate::state::{self, StateEntry};
use crate::table::{DiscoveryCtrl, Origin, Slot};

/// Writes the handoff state file; a failure is said once, not at every change.
pub struct StateFile {
    pub dir: PathBuf,
    /// Write nothing (a dry run, or a guest beside a daemon).
    pub dry_run: bool,
    pub failed: Cell<bool>,
}

impl StateFile {
    pub fn write(&self, entries: Vec<StateEntry>) {
        if self.dry_run {
            return;
        }
        match state::write(&self.dir, &state::render(entries.iter())) {
            Ok(()) => {
                if self.failed.replace(false) {
                    info!("state file written again");
                }
            }
            Err(e) => {
                if !self.failed.replace(true) {
                    error!("{e}: the next instance will not adopt our discovery controllers");
                }
            }
        }
    }
}

/// The state file's entries: our discovery controllers, plus one just created and not yet in the
/// table. The host NQN written is the effective one, so the next instance (whose default may
/// differ) knows which host the controller was made for.
pub fn owned_entries(
    engine: &Engine,
    hostnqn: &str,
    new: Option<(&TransportAddr, &DiscoveryCtrl, Origin)>,
) -> Vec<StateEntry> {
    engine
        .owned()
        .chain(new)
        .map(|(addr, dc, origin)| {
            let addr = addr.with_effective_host(hostnqn);
            StateEntry {
                instance: dc.instance,
                addr,
                cntlid: dc.cntlid,
                subsysnqn: dc.subsysnqn,
                origin,
                ino: dc.ino,
                creating: false,
            }
        })
        .collect()
}

/// The `creating` entry for a discovery controller about to be made for `slot` at `addr`;
/// `newest`: the highest controller identity sysfs shows now (see `StateEntry::creating`).
pub fn creating_entry(addr: &TransportAddr, hostnqn: &str, slot: &Slot, newest: u64) -> StateEntry {
    let addr = addr.with_effective_host(hostnqn);
    StateEntry {
        instance: 0,
        addr,
        cntlid: 0,
        ino: newest,
        subsysnqn: if slot.dc_nqn.is_empty() {
            crate::addr::Nqn::new(crate::fabrics::DISCOVERY_NQN).unwrap_or_default()
        } else {
            slot.dc_nqn
        },
        origin: slot.origin,
        creating: true,
    }
}
