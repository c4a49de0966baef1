//! The seam between a discovery run and the kernel: what a run asks of /dev/nvme-fabrics, sysfs
//! and the discovery log ioctl, as one trait with the real implementation here and an in-memory
//! one ([`crate::fake_kernel`]) for host tests and fuzzing.

use std::path::{Path, PathBuf};

use crate::discovery_log::{self, ControllerLog, DiscoveryEntry, EntryError};
use crate::error::Result;
use crate::fabrics::{ConnectOutcome, Fabrics, SupportedTokens};
use crate::sysfs::{Controller, Sysfs};

/// How often the log is re-read when its generation counter keeps changing.
pub const LOG_READ_TRIES: u32 = 5;

/// A discovery log as read: every entry, a refused one as its error.
pub type LogEntries = Vec<std::result::Result<DiscoveryEntry, EntryError>>;

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
    /// /sys/class/nvme/`name`.
    fn controller(&self, name: &str) -> Result<Controller>;
    /// The identity of `name` now (`None`: no such controller); see [`Sysfs::identity`].
    fn identity(&self, name: &str) -> Result<Option<u64>>;
    /// Write to `name`'s delete_controller. The caller has checked it is ours.
    fn delete_controller(&self, name: &str) -> Result<()>;
    /// Read /dev/nvme`instance`'s discovery log consistently.
    fn read_log(&self, instance: u32) -> Result<LogEntries>;
}

/// The running kernel, under configurable /sys and /dev roots.
pub struct RealKernel {
    pub fabrics: Fabrics,
    pub sysfs: Sysfs,
    dev_root: PathBuf,
}

impl RealKernel {
    pub fn new(sys_root: &Path, dev_root: &Path) -> RealKernel {
        RealKernel {
            fabrics: Fabrics::new(dev_root),
            sysfs: Sysfs::new(sys_root),
            dev_root: dev_root.to_path_buf(),
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
        self.fabrics.connect(options)
    }

    fn controllers(&self) -> Vec<Controller> {
        self.sysfs.controllers()
    }

    fn controller(&self, name: &str) -> Result<Controller> {
        self.sysfs.controller(name)
    }

    fn identity(&self, name: &str) -> Result<Option<u64>> {
        self.sysfs.identity(name)
    }

    fn delete_controller(&self, name: &str) -> Result<()> {
        self.sysfs.delete_controller(name)
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
