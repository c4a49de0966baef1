//! Kernel events as engine inputs: what a classified uevent means, with the sysfs reads the
//! event alone cannot answer (is the controller a discovery one, who is it now).

use crate::addr::{Transport, TransportAddr};
use crate::engine::Input;
use crate::kernel::Kernel;
use crate::uevent::{self, Event};

/// The discovery log change AEN: type notice (2), info 0xf0, log page 0x70.
pub const AEN_DISCOVERY_LOG_CHANGE: u32 = 0x70f002;

/// Turn a classified uevent into an engine input, reading sysfs where the event alone is not enough.
pub fn input_of(
    ev: &Event,
    kernel: &dyn Kernel,
    persistent: bool,
    autoconnect: bool,
) -> Option<Input> {
    let to_addr = |a: &uevent::EventAddr| match a.to_addr() {
        Ok(addr) => Some(addr),
        Err(field) => {
            warn!("ignoring {ev}: {field} too long");
            None
        }
    };
    // Who the controller is right now: the number may already be another controller's.
    // `Some(0)` when sysfs could not say: never taken as "gone".
    let identity = |ctrl: &str| kernel.identity(ctrl).unwrap_or(Some(0));
    match ev {
        // Only the discovery log change AEN matters; both re-read that controller's log. With
        // --autoconnect we masked nvme-cli's udev rule, which would have acted on it, so it is
        // ours to act on even without --persistent.
        Event::Aen {
            ctrl,
            addr,
            aen: AEN_DISCOVERY_LOG_CHANGE,
        }
        | Event::Rediscover { ctrl, addr }
            if persistent || autoconnect =>
        {
            let instance = crate::sysfs::instance_of(ctrl)?;
            if let Some(owner) = kernel.claimed_by(instance) {
                debug!("{ctrl} is registered to {owner}: its log is not ours to read");
                return None;
            }
            Some(Input::LogChanged {
                instance,
                ino: identity(ctrl).unwrap_or(0),
                addr: to_addr(addr)?,
            })
        }
        Event::Aen { .. } | Event::Rediscover { .. } => None,
        Event::Connected { ctrl, addr } => {
            if !persistent {
                return None;
            }
            // Only now is the controller live and its attributes readable.
            let c = kernel.controller(ctrl).ok()?;
            if !c.is_discovery() || c.claimed_by.is_some() {
                return None;
            }
            Some(Input::DcLive {
                instance: c.instance,
                ino: c.ino,
                addr: to_addr(addr)?,
            })
        }
        Event::CtrlRemove { ctrl, .. } => Some(Input::CtrlRemoved {
            instance: crate::sysfs::instance_of(ctrl)?,
            current: identity(ctrl),
        }),
        Event::CtrlAdd { .. } => None,
        Event::FcDiscovery {
            host_traddr,
            traddr,
        } => match TransportAddr::new(Transport::Fc, traddr, "", host_traddr, "") {
            Ok(addr) => Some(Input::FcDiscovery { addr }),
            Err(field) => {
                warn!("ignoring {ev}: {field} too long");
                None
            }
        },
    }
}

/// Does this event call for the FC boot replay (writing `add` to the FC transport's
/// nvme_discovery)? When an FC controller goes, its remote port may be logging in again: the
/// kernel sends `nvmediscovery` for a port only when it appears, so without a replay a port that
/// came back before its controller was given up would never be discovered again (nvme-discoverd
/// replays on every FC controller drop as well).
pub fn asks_fc_replay(ev: &Event) -> bool {
    matches!(ev, Event::CtrlRemove { addr, .. } if addr.transport == Transport::Fc)
}

/// When the FC replay asked for by [`asks_fc_replay`] may be written. A replay makes the daemon
/// connect, and over FC a connect returns before the association is made: a port that refuses it
/// drops the new controller a moment later, which would ask for the next replay, for ever (the VM
/// showed exactly that loop). So replays in a row back off (at once, then 1 s doubling to 60 s)
/// and a request made meanwhile waits for its turn instead of being dropped; after five quiet
/// minutes the count starts again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FcReplayPacer {
    last: Option<u64>,
    in_a_row: u32,
    wanted: bool,
}

impl FcReplayPacer {
    const QUIET_MS: u64 = 300_000;
    const CAP_MS: u64 = 60_000;

    /// An FC controller went.
    pub fn request(&mut self) {
        self.wanted = true;
    }

    fn earliest(&self, now: u64) -> u64 {
        match self.last {
            Some(last) if now.saturating_sub(last) <= Self::QUIET_MS && self.in_a_row > 0 => {
                let shift = (self.in_a_row - 1).min(16);
                last.saturating_add((1000u64 << shift).min(Self::CAP_MS))
            }
            _ => now,
        }
    }

    /// Should the replay be written at `now`? True at most once per request burst and turn.
    pub fn take_due(&mut self, now: u64) -> bool {
        if !self.wanted || now < self.earliest(now) {
            return false;
        }
        if self
            .last
            .is_some_and(|l| now.saturating_sub(l) > Self::QUIET_MS)
        {
            self.in_a_row = 0;
        }
        self.wanted = false;
        self.last = Some(now);
        self.in_a_row = self.in_a_row.saturating_add(1);
        true
    }

    /// When a waiting request may be written (for the poll timeout).
    pub fn deadline(&self, now: u64) -> Option<u64> {
        self.wanted.then(|| self.earliest(now))
    }
}

/// /dev/nvme-fabrics, or a transport for it, became usable. The device appears with nvme-fabrics,
/// before any transport module has registered (a connect then fails with EINVAL, "no handler found
/// for transport"); the kernel sends a module's `add` uevent after its init ran, so the transport
/// is registered by then.
pub fn fabrics_appeared<'a>(u: &uevent::Uevent<'a>) -> Option<&'a str> {
    if u.action() != "add" {
        return None;
    }
    match u.subsystem()? {
        "misc" if u.get("DEVNAME") == Some("nvme-fabrics") => Some("/dev/nvme-fabrics"),
        "module" => match u.devpath() {
            "/module/nvme_tcp" | "/module/nvme_rdma" | "/module/nvme_fc" | "/module/nvme_loop" => {
                Some(u.devpath().trim_start_matches("/module/"))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fc_replays_in_a_row_back_off_and_none_is_dropped() {
        let mut p = FcReplayPacer::default();
        assert!(!p.take_due(0), "nothing asked");
        p.request();
        assert!(p.take_due(10), "the first at once");
        // The replay's connect fails and drops a controller: the next waits 1 s, then 2 s, 4 s.
        let mut now = 20;
        let mut at = vec![];
        for _ in 0..5 {
            p.request();
            p.request(); // a burst asks once
            let due = p.deadline(now).unwrap();
            assert!(!p.take_due(due - 1));
            assert!(p.take_due(due));
            at.push(due);
            now = due + 5;
        }
        assert_eq!(at, [1_010, 3_010, 7_010, 15_010, 31_010]);
        assert_eq!(p.deadline(now), None, "nothing waiting");
        // Capped at 60 s.
        for _ in 0..5 {
            p.request();
            let due = p.deadline(now).unwrap();
            assert!(due - now <= 60_000);
            assert!(p.take_due(due));
            now = due;
        }
        // Five quiet minutes: at once again.
        p.request();
        assert!(p.take_due(now + 300_001));
    }

    #[test]
    fn only_an_fc_controller_drop_asks_for_the_fc_replay() {
        use crate::uevent::EventAddr;
        let addr = |transport| EventAddr {
            transport,
            traddr: "nn-0x1:pn-0x2",
            trsvcid: "",
            host_traddr: "nn-0x3:pn-0x4",
            host_iface: "",
        };
        let fc = Event::CtrlRemove {
            ctrl: "nvme3",
            addr: addr(Transport::Fc),
        };
        assert!(asks_fc_replay(&fc));
        let tcp = Event::CtrlRemove {
            ctrl: "nvme3",
            addr: addr(Transport::Tcp),
        };
        assert!(!asks_fc_replay(&tcp));
        let add = Event::CtrlAdd {
            ctrl: "nvme3",
            addr: addr(Transport::Fc),
        };
        assert!(!asks_fc_replay(&add));
    }

    use super::*;

    fn appeared(payload: &[u8]) -> Option<&str> {
        fabrics_appeared(&uevent::Uevent::parse(payload).unwrap())
    }

    #[test]
    fn fabrics_device_and_transport_modules_appear() {
        assert_eq!(
            appeared(b"add@/devices/virtual/misc/nvme-fabrics\0ACTION=add\0DEVPATH=/devices/virtual/misc/nvme-fabrics\0SUBSYSTEM=misc\0MAJOR=10\0MINOR=260\0DEVNAME=nvme-fabrics\0SEQNUM=685\0"),
            Some("/dev/nvme-fabrics")
        );
        assert_eq!(
            appeared(b"add@/module/nvme_tcp\0ACTION=add\0DEVPATH=/module/nvme_tcp\0SUBSYSTEM=module\0SEQNUM=9\0"),
            Some("nvme_tcp")
        );
        assert_eq!(appeared(b"remove@/module/nvme_tcp\0ACTION=remove\0DEVPATH=/module/nvme_tcp\0SUBSYSTEM=module\0"), None);
        assert_eq!(
            appeared(
                b"add@/module/nvmet_tcp\0ACTION=add\0DEVPATH=/module/nvmet_tcp\0SUBSYSTEM=module\0"
            ),
            None
        );
    }
}
