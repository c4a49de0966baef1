//! The connection table: one slot per discovery transport address, fixed capacity.
//!
//! The capacity is a compile-time constant so the daemon's memory does not grow with events; a full
//! table refuses the new address (the caller logs it), it never overwrites a slot.

use crate::addr::{Nqn, TransportAddr};

/// How many discovery controller addresses one daemon tracks.
pub const CAPACITY: usize = 128;

/// Index of a slot; stable for the slot's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId(pub u16);

/// Monotonic time in milliseconds, supplied by the shell (the engine never reads a clock).
pub type Millis = u64;

/// What the slot is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Idle,
    Discovering,
    /// The last discovery failed; run again at the deadline.
    WaitRetry {
        at: Millis,
    },
}

/// Who owns the discovery controller behind a slot. Only ours may be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This process created it.
    Ours,
    /// Created by an earlier instance (the initramfs one) and handed over in the state file: ours now.
    Adopted,
    /// Somebody else's (nvme-cli, an admin): used, never deleted.
    Foreign,
}

impl Owner {
    pub fn is_ours(self) -> bool {
        matches!(self, Owner::Ours | Owner::Adopted)
    }

    pub fn name(self) -> &'static str {
        match self {
            Owner::Ours => "ours",
            Owner::Adopted => "adopted",
            Owner::Foreign => "foreign",
        }
    }
}

/// Where we learned of the address. Decides whether we recreate its controller when it goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// discovery.conf, the command line, or rd.nvmf.discover=.
    Config,
    /// An FC `nvmediscovery` uevent.
    FcEvent,
    /// A referral entry in another discovery controller's log.
    Referral,
    /// An AEN or rediscover uevent from a discovery controller we did not know.
    Aen,
    /// A discovery controller already present in sysfs at startup.
    Startup,
    /// The firmware's boot table (NBFT): a path the host may have booted from. Never released,
    /// never pruned, and its discovery controller is left up at exit, with or without `--keep`.
    Nbft,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::FcEvent => "fc",
            Origin::Referral => "referral",
            Origin::Aen => "aen",
            Origin::Startup => "startup",
            Origin::Nbft => "nbft",
        }
    }

    pub fn from_name(s: &str) -> Option<Origin> {
        [
            Origin::Config,
            Origin::FcEvent,
            Origin::Referral,
            Origin::Aen,
            Origin::Startup,
            Origin::Nbft,
        ]
        .into_iter()
        .find(|o| o.name() == s)
    }

    /// Addresses somebody asked for: we keep a discovery controller to them even if it disappears.
    pub fn is_wanted(self) -> bool {
        matches!(
            self,
            Origin::Config | Origin::FcEvent | Origin::Referral | Origin::Nbft
        )
    }

    /// Named by configuration or firmware: never evicted from a full table, never pruned.
    pub fn is_configured(self) -> bool {
        matches!(self, Origin::Config | Origin::Nbft)
    }
}

/// The discovery controller currently serving a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryCtrl {
    /// N of /dev/nvmeN.
    pub instance: u32,
    pub owner: Owner,
    pub cntlid: u16,
    /// The subsystem it reported (the well-known discovery NQN or a unique one).
    pub subsysnqn: Nqn,
    /// Who it is: the kernfs inode of its sysfs directory (see `Sysfs::identity`); 0 when not
    /// known (a version-1 state file, or sysfs could not say).
    pub ino: u64,
}

/// Which connection options apply: the command line's, or a discovery.conf line's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptsRef {
    Global,
    Source(u16),
}

/// One discovery controller address and everything the engine knows about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub addr: TransportAddr,
    pub state: SlotState,
    /// Events arrived since the last discovery started: run once more.
    pub pending: bool,
    /// Order in which pending slots were queued, so a failing address cannot starve the others.
    pub queued_seq: u64,
    pub dc: Option<DiscoveryCtrl>,
    pub origin: Origin,
    pub opts: OptsRef,
    pub failures: u32,
    /// The last failure was an authentication failure (kept apart from `failures`, which an
    /// ordinary outage can also run up).
    pub auth_failing: bool,
    /// The last failure was a refusal of ours before the write (discover::refused_again).
    pub refusing: bool,
    pub discoveries: u64,
    /// Never keep a persistent discovery controller here (a referral without EPCSD).
    pub temporary: bool,
    /// The slots whose last discovery log named this address as a referral, one bit per
    /// [`SlotId`]: a referral is kept while one of them still names it.
    pub referrers: Referrers,
    /// Since when nothing asks for this address any more (no referrer left, or the FC remote port
    /// is gone); released once the grace period has passed.
    pub orphan_since: Option<Millis>,
    /// A configuration reload is in progress and no line has named this address again yet.
    pub unconfirmed: bool,
    /// The NQN its discovery controller is created with: empty for the well-known discovery NQN;
    /// a referral may name a unique one (TP8013).
    pub dc_nqn: Nqn,
    /// A referral whose entry asked for TLS (and TLS is configured): its discovery controller
    /// is reached with `tls`, whatever its options say.
    pub tls: bool,
    /// Empty for a discovery address. Otherwise the slot is an NVM subsystem at `addr` that the
    /// configuration names directly (nvme-fabrics.conf `[Subsystem]`): no discovery controller,
    /// no log; a run connects it if sysfs shows it is not connected.
    pub subsystem: Nqn,
}

/// A set of slot ids as a bit mask; fixed size, as the table is.
pub type Referrers = u128;
const _: () = assert!(CAPACITY <= Referrers::BITS as usize);

/// The bit of `id` in a [`Referrers`] mask.
pub fn referrer_bit(id: SlotId) -> Referrers {
    1 << (id.0 as u32 % Referrers::BITS)
}

impl Slot {
    pub fn new(addr: TransportAddr, origin: Origin, opts: OptsRef) -> Slot {
        Slot {
            addr,
            state: SlotState::Idle,
            pending: false,
            queued_seq: 0,
            dc: None,
            origin,
            opts,
            failures: 0,
            auth_failing: false,
            refusing: false,
            discoveries: 0,
            temporary: false,
            referrers: 0,
            orphan_since: None,
            unconfirmed: false,
            dc_nqn: Nqn::EMPTY,
            tls: false,
            subsystem: Nqn::EMPTY,
        }
    }

    /// A subsystem connected directly (see [`Slot::subsystem`]), not a discovery address.
    pub fn is_direct(&self) -> bool {
        !self.subsystem.is_empty()
    }
}

/// The fixed-capacity table: [`CAPACITY`] slots in one allocation made at start, never grown.
/// On the heap, not inline: 128 slots are 178 KiB, and the engine holding them inline was
/// built and moved on the stack, whose pages stay resident (720 KiB of an idle daemon's stack).
#[derive(Clone)]
pub struct Table {
    slots: Box<[Option<Slot>]>,
}

/// The table has no free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl Default for Table {
    fn default() -> Self {
        Table {
            slots: vec![None; CAPACITY].into_boxed_slice(),
        }
    }
}

impl Table {
    pub fn get(&self, id: SlotId) -> Option<&Slot> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.slots.get_mut(id.0 as usize)?.as_mut()
    }

    /// Every slot number, held or free, without borrowing the table: for a walk that changes
    /// slots as it goes and must not allocate a list of them first.
    pub fn ids() -> impl Iterator<Item = SlotId> {
        (0..CAPACITY).map(|i| SlotId(i as u16))
    }

    pub fn iter(&self) -> impl Iterator<Item = (SlotId, &Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((SlotId(i as u16), s.as_ref()?)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SlotId, &mut Slot)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| Some((SlotId(i as u16), s.as_mut()?)))
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The discovery slot for exactly this address (hostnqn included).
    pub fn find(&self, addr: &TransportAddr) -> Option<SlotId> {
        self.find_subsystem(addr, &Nqn::EMPTY)
    }

    /// The slot of the subsystem `nqn` connected directly at `addr` (empty `nqn`: the discovery
    /// slot of the address, as [`Table::find`]).
    pub fn find_subsystem(&self, addr: &TransportAddr, nqn: &Nqn) -> Option<SlotId> {
        self.iter()
            .find(|(_, s)| s.addr == *addr && s.subsystem == *nqn)
            .map(|(id, _)| id)
    }

    /// The discovery slot for an address from a uevent, which carries no host NQN, so it is not
    /// compared.
    pub fn find_any_host(&self, addr: &TransportAddr) -> Option<SlotId> {
        self.iter()
            .find(|(_, s)| !s.is_direct() && s.addr.same_port(addr))
            .map(|(id, _)| id)
    }

    /// The slot whose discovery controller is /dev/nvme`instance` with identity `ino` (0: any;
    /// a recorded identity of 0 matches any too).
    pub fn find_dc(&self, instance: u32, ino: u64) -> Option<SlotId> {
        self.iter()
            .find(|(_, s)| {
                s.dc.is_some_and(|d| {
                    d.instance == instance && (ino == 0 || d.ino == 0 || d.ino == ino)
                })
            })
            .map(|(id, _)| id)
    }

    /// Put `slot` into a free place. Never replaces an existing slot.
    pub fn insert(&mut self, slot: Slot) -> Result<SlotId, TableFull> {
        let (i, free) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(TableFull)?;
        *free = Some(slot);
        Ok(SlotId(i as u16))
    }

    pub fn remove(&mut self, id: SlotId) -> Option<Slot> {
        self.slots.get_mut(id.0 as usize)?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Transport;

    fn addr(i: usize) -> TransportAddr {
        TransportAddr::new(Transport::Tcp, &format!("10.0.0.{i}"), "8009", "", "").unwrap()
    }

    #[test]
    fn insert_find_remove() {
        let mut t = Table::default();
        let id = t
            .insert(Slot::new(addr(1), Origin::Config, OptsRef::Global))
            .unwrap();
        assert_eq!(t.find(&addr(1)), Some(id));
        assert_eq!(
            t.find_any_host(
                &TransportAddr::new(Transport::Tcp, "10.0.0.1", "8009", "none", "none").unwrap()
            ),
            Some(id)
        );
        assert_eq!(t.find(&addr(2)), None);
        assert!(t.remove(id).is_some());
        assert!(t.is_empty());
    }

    #[test]
    fn a_direct_subsystem_is_not_the_discovery_slot_of_its_address() {
        let mut t = Table::default();
        let mut direct = Slot::new(addr(1), Origin::Config, OptsRef::Global);
        direct.subsystem = Nqn::new("nqn.2024-01.io.example:direct").unwrap();
        let d = t.insert(direct).unwrap();
        assert_eq!(t.find(&addr(1)), None);
        assert_eq!(t.find_any_host(&addr(1)), None);
        assert_eq!(t.find_subsystem(&addr(1), &direct.subsystem), Some(d));
        let other = Nqn::new("nqn.2024-01.io.example:other").unwrap();
        assert_eq!(t.find_subsystem(&addr(1), &other), None);
        let dc = t
            .insert(Slot::new(addr(1), Origin::Config, OptsRef::Global))
            .unwrap();
        assert_eq!(t.find(&addr(1)), Some(dc));
        assert_eq!(t.find_any_host(&addr(1)), Some(dc));
    }

    #[test]
    fn full_table_refuses_and_keeps_every_slot() {
        let mut t = Table::default();
        for i in 0..CAPACITY {
            t.insert(Slot::new(addr(i), Origin::Config, OptsRef::Global))
                .unwrap();
        }
        assert_eq!(
            t.insert(Slot::new(addr(9999), Origin::Config, OptsRef::Global)),
            Err(TableFull)
        );
        assert_eq!(t.len(), CAPACITY);
        for i in 0..CAPACITY {
            assert!(t.find(&addr(i)).is_some());
        }
    }

    #[test]
    fn find_by_discovery_controller() {
        let mut t = Table::default();
        let mut s = Slot::new(addr(1), Origin::Config, OptsRef::Global);
        s.dc = Some(DiscoveryCtrl {
            instance: 7,
            owner: Owner::Ours,
            cntlid: 1,
            subsysnqn: Nqn::EMPTY,
            ino: 70,
        });
        let id = t.insert(s).unwrap();
        assert_eq!(t.find_dc(7, 70), Some(id));
        assert_eq!(t.find_dc(7, 0), Some(id));
        // The number given to another controller since: not ours.
        assert_eq!(t.find_dc(7, 71), None);
        assert_eq!(t.find_dc(8, 70), None);
    }

    #[test]
    fn origin_names_round_trip() {
        for o in [
            Origin::Config,
            Origin::FcEvent,
            Origin::Referral,
            Origin::Aen,
            Origin::Startup,
        ] {
            assert_eq!(Origin::from_name(o.name()), Some(o));
        }
    }
}
