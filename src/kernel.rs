//! The seam between a discovery run and the kernel: what a run asks of /dev/nvme-fabrics, sysfs
//! and the discovery log ioctl, as one trait with the real implementation here and an in-memory
//! one ([`crate::fake_kernel`]) for host tests and fuzzing.

use std::path::{Path, PathBuf};

use crate::addr::TransportAddr;
use crate::discovery_log::{self, ControllerLog};
use crate::error::Result;
use crate::fabrics::{ConnectOutcome, Fabrics, SupportedTokens};
use crate::registry::{Claim, Registry};
use crate::sysfs::{Controller, Scan, Sysfs};

/// How often the log is re-read when its generation counter keeps changing.
pub const LOG_READ_TRIES: u32 = 5;

/// A discovery log as read: every entry, a refused one as its error.
pub type LogEntries = crate::discovery_log::Entries;

/// What a discovery run needs from the kernel.
pub trait Kernel {
    /// /dev/nvme-fabrics is there (the nvme-fabrics module is loaded).
    fn fabrics_present(&self) -> bool;
    /// The option tokens the kernel takes (the pre-write read).
    fn supported_tokens(&self) -> Result<SupportedTokens>;
    /// One write of `options` to /dev/nvme-fabrics.
    fn connect(&self, options: &str) -> Result<ConnectOutcome>;
    /// Every fabrics controller, by instance.
    fn controllers(&self) -> Vec<Controller>;
    /// What choosing a discovery controller for `addr` looks at ([`crate::sysfs::may_serve`]:
    /// the controller numbered `recorded`, the discovery controllers that may be at `addr`),
    /// with the newest identity among every controller; see [`Sysfs::scan`].
    fn discovery_controllers(&self, addr: &TransportAddr, recorded: Option<u32>) -> Scan;
    /// Every fabrics controller but the discovery controllers with the well-known NQN (one not
    /// identified yet included), by instance: what connecting a log's entries looks for (an
    /// entry naming the well-known NQN is refused before; one naming a TP8013 unique discovery
    /// NQN still finds that controller); see [`Sysfs::scan`].
    fn io_controllers(&self) -> Vec<Controller>;
    /// /sys/class/nvme/`name`.
    fn controller(&self, name: &str) -> Result<Controller>;
    /// The identity of `name` now (`None`: no such controller); see [`Sysfs::identity`].
    fn identity(&self, name: &str) -> Result<Option<u64>>;
    /// A controller we just made, built from what we wrote ([`crate::sysfs::written`]), with
    /// its state and identity now (`None`: gone already); see [`Sysfs::complete`].
    fn complete(&self, made: Controller) -> Result<Option<Controller>>;
    /// The other orchestrator that registered `nvme{instance}` in nvme-cli 3's registry, if any.
    fn claimed_by(&self, instance: u32) -> Option<String>;
    /// Write to `name`'s delete_controller. The caller has checked it is ours.
    fn delete_controller(&self, name: &str) -> Result<()>;
    /// Read /dev/nvme`instance`'s discovery log consistently.
    fn read_log(&self, instance: u32) -> Result<LogEntries>;
    /// `nvme_core.admin_timeout`: how long the kernel waits for one unanswered admin command
    /// (a connect write can take that plus the transport's own setup); see
    /// [`Sysfs::admin_timeout`].
    fn admin_timeout(&self) -> std::time::Duration;
}

/// The running kernel, under configurable /sys and /dev roots, with the host's controller
/// registry: every controller we create is registered as ours, and every one we read is marked
/// with another owner's claim.
pub struct RealKernel {
    pub fabrics: Fabrics,
    pub sysfs: Sysfs,
    pub registry: Registry,
    dev_root: PathBuf,
    /// Controllers we deleted whose `remove` event has not been seen yet (a few at most: a
    /// temporary discovery controller per run, our own at exit).
    deleted: std::cell::RefCell<Vec<u32>>,
}

impl RealKernel {
    pub fn new(sys_root: &Path, dev_root: &Path, registry: Registry) -> RealKernel {
        RealKernel {
            fabrics: Fabrics::new(dev_root),
            sysfs: Sysfs::new(sys_root),
            registry,
            dev_root: dev_root.to_path_buf(),
            deleted: Default::default(),
        }
    }

    /// Was `nvme{instance}`'s removal our own delete? Answered once per delete.
    pub fn took_own_removal(&self, instance: u32) -> bool {
        let mut d = self.deleted.borrow_mut();
        match d.iter().position(|&i| i == instance) {
            Some(at) => {
                d.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// Claims decide what we may use and delete, and we use and delete discovery controllers
    /// only: an I/O controller connected by anyone counts as connected (a rescan of 64
    /// connected subsystems read 64 owner files for nothing).
    fn mark_claims(&self, ctrls: &mut [Controller]) {
        let registered = self.registry.instances();
        for c in ctrls
            .iter_mut()
            .filter(|c| c.is_discovery() && registered.contains(&c.instance))
        {
            self.mark_claim(c);
        }
    }

    fn mark_claim(&self, c: &mut Controller) {
        if let Claim::Other(owner) = self.registry.claim(c.instance) {
            c.claimed_by = Some(owner);
        }
    }
}

impl Kernel for RealKernel {
    fn fabrics_present(&self) -> bool {
        self.fabrics.exists()
    }

    fn supported_tokens(&self) -> Result<SupportedTokens> {
        self.fabrics.supported_tokens()
    }

    fn connect(&self, options: &str) -> Result<ConnectOutcome> {
        // The stamp is read before the write: it is then below the new controller's `add` and any
        // `remove` of it, however fast it goes again; a late remove of the number's previous
        // holder is told apart by the device node, which the kernel made during the write.
        let stamp = self.registry.uevent_seqnum();
        let outcome = self.fabrics.connect(options)?;
        if let ConnectOutcome::Connected { instance, .. } = outcome {
            // At once: until the entry is there, `disconnect-all` takes the controller for nobody's.
            if let Err(e) = stamp.and_then(|s| self.registry.register(instance, s)) {
                warn!("{e}: nvme{instance} is up but not registered as ours");
            }
        }
        Ok(outcome)
    }

    fn controllers(&self) -> Vec<Controller> {
        let mut ctrls = self.sysfs.controllers();
        self.mark_claims(&mut ctrls);
        ctrls
    }

    fn discovery_controllers(&self, addr: &TransportAddr, recorded: Option<u32>) -> Scan {
        let mut scan = self
            .sysfs
            .scan(|c| crate::sysfs::may_serve(c, addr, recorded));
        self.mark_claims(&mut scan.ctrls);
        scan
    }

    fn io_controllers(&self) -> Vec<Controller> {
        // No claims: only a discovery controller's decide anything.
        self.sysfs.scan(crate::sysfs::may_be_entry).ctrls
    }

    fn controller(&self, name: &str) -> Result<Controller> {
        let mut c = self.sysfs.controller(name)?;
        self.mark_claim(&mut c);
        Ok(c)
    }

    fn claimed_by(&self, instance: u32) -> Option<String> {
        match self.registry.claim(instance) {
            Claim::Other(owner) => Some(owner),
            Claim::Ours | Claim::Unowned => None,
        }
    }

    fn identity(&self, name: &str) -> Result<Option<u64>> {
        self.sysfs.identity(name)
    }

    fn complete(&self, made: Controller) -> Result<Option<Controller>> {
        // Registered as ours by `connect`: no claim to read.
        self.sysfs.complete(made)
    }

    fn admin_timeout(&self) -> std::time::Duration {
        self.sysfs.admin_timeout()
    }

    fn delete_controller(&self, name: &str) -> Result<()> {
        self.sysfs.delete_controller(name)?;
        if let Some(instance) = crate::sysfs::instance_of(name) {
            let mut d = self.deleted.borrow_mut();
            if d.len() >= 32 {
                d.remove(0);
            }
            d.push(instance);
        }
        // The write returns after the kernel removed the device (its `remove` event is counted by
        // now), so the registry's rule can be applied at once: --once gets no remove event.
        if let Some(instance) = crate::sysfs::instance_of(name) {
            if let Err(e) = self.registry.forget(instance, None) {
                warn!("{e}");
            }
        }
        Ok(())
    }

    fn read_log(&self, instance: u32) -> Result<LogEntries> {
        let mut src = ControllerLog::open(&self.dev_root, &format!("nvme{instance}"))?;
        let log = discovery_log::read_discovery_log(&mut src, LOG_READ_TRIES)?;
        debug!(
            "nvme{}: discovery log genctr {} with {} entries",
            instance,
            log.genctr,
            log.entries.len()
        );
        Ok(log.entries)
    }
}
