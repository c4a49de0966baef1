//! /sys/class/nvme: the fabrics controllers the kernel has, how they are reached, and deleting them.
//!
//! Matching an address to an existing controller follows libnvme's `nvme_ctrl_find` (tree.c,
//! `_tcp_match_ctrl` and `_match_ctrl`), without its interface table:
//! - transport must be equal; `none` is unset everywhere;
//! - the well-known discovery NQN matches any discovery controller (since TP8013 a controller
//!   created with it may show the subsystem's unique NQN in sysfs); any other NQN must be equal;
//! - the host NQN must be equal when both are known (libnvme groups controllers by host);
//! - TCP: traddr and trsvcid must be equal (an unset trsvcid is the kernel's default 8009, which
//!   sysfs shows). host_traddr and host_iface are checked only if our address names them:
//!   host_traddr against the controller's host_traddr, else its `src_addr` (kernel >= 6.1); with
//!   neither, libnvme's optimistic "match". host_iface against the controller's host_iface, else
//!   "match": libnvme maps src_addr to an interface with getifaddrs, which we do not do;
//! - other transports: traddr, trsvcid, host_traddr and host_iface are compared only when both
//!   sides have them;
//! - IP addresses compare as addresses (`::ffff:10.0.0.1` is `10.0.0.1`), FC addresses ignoring case.
//!
//! # References
//! - drivers/nvme/host/core.c (`nvme_sysfs_show_*`, `state` names), fabrics.c `nvmf_get_address`,
//!   tcp.c `nvme_tcp_get_address` (`src_addr`, 6.1), `NVME_TCP_DISC_PORT`
//! - libnvme src/nvme/tree.c `_candidate_init`, `_tcp_match_ctrl`, `_match_ctrl`
//! - drivers/nvme/host/fc.c `nvme_discovery` (`fc_udev_device`)

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::addr::{Transport, TransportAddr, unset_to_empty};
use crate::error::{Context, Error, Result};
use crate::fabrics::DISCOVERY_NQN;

/// The fields of a sysfs `address` attribute; empty when absent or `none`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Address<'a> {
    pub traddr: &'a str,
    pub trsvcid: &'a str,
    pub host_traddr: &'a str,
    pub host_iface: &'a str,
    /// The local address of a live TCP connection (kernel >= 6.1).
    pub src_addr: &'a str,
}

/// Parse `traddr=X[,trsvcid=Y][,host_traddr=Z][,host_iface=W][,src_addr=A]`; unknown keys are ignored.
pub fn parse_address(s: &str) -> Address<'_> {
    let mut a = Address::default();
    for part in s.trim_end_matches(['\n', '\0']).split(',') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let value = unset_to_empty(value);
        match key {
            "traddr" => a.traddr = value,
            "trsvcid" => a.trsvcid = value,
            "host_traddr" => a.host_traddr = value,
            "host_iface" => a.host_iface = value,
            "src_addr" => a.src_addr = value,
            _ => {}
        }
    }
    a
}

/// Controller state as sysfs `state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlState {
    New,
    Live,
    Resetting,
    Connecting,
    Deleting,
    DeletingNoIo,
    Dead,
    Other,
}

impl CtrlState {
    pub fn parse(s: &str) -> CtrlState {
        match s.trim_end() {
            "new" => CtrlState::New,
            "live" => CtrlState::Live,
            "resetting" => CtrlState::Resetting,
            "connecting" => CtrlState::Connecting,
            "deleting" => CtrlState::Deleting,
            "deleting (no IO)" => CtrlState::DeletingNoIo,
            "dead" => CtrlState::Dead,
            _ => CtrlState::Other,
        }
    }

    /// The state as sysfs writes it.
    pub fn name(self) -> &'static str {
        match self {
            CtrlState::New => "new",
            CtrlState::Live => "live",
            CtrlState::Resetting => "resetting",
            CtrlState::Connecting => "connecting",
            CtrlState::Deleting => "deleting",
            CtrlState::DeletingNoIo => "deleting (no IO)",
            CtrlState::Dead => "dead",
            CtrlState::Other => "in an unknown state",
        }
    }

    /// Deleting or dead: the controller will not come back and must not be reused.
    pub fn is_going_away(self) -> bool {
        matches!(
            self,
            CtrlState::Deleting | CtrlState::DeletingNoIo | CtrlState::Dead
        )
    }
}

/// One fabrics controller as sysfs shows it. Address fields are empty when absent or `none`;
/// optional attributes (cntrltype, hostnqn, cntlid) when the kernel lacks them. Only what a
/// decision of ours uses is read (not dctype or hostid): each costs three syscalls per
/// controller in a host's first scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// `nvmeN`
    pub name: String,
    pub instance: u32,
    pub transport: Transport,
    pub traddr: String,
    pub trsvcid: String,
    pub host_traddr: String,
    pub host_iface: String,
    pub src_addr: String,
    pub subsysnqn: String,
    pub state: CtrlState,
    /// `io`, `discovery`, `admin`; empty before kernel 5.18.
    pub cntrltype: String,
    pub hostnqn: String,
    /// Read from sysfs for a discovery controller only ([`crate::ownership`] compares it): `None`
    /// for any other, but one we made in this run (the connect reply's).
    pub cntlid: Option<u16>,
    /// The kernfs inode number of the controller's sysfs directory: who this controller is.
    /// See [`Sysfs::identity`].
    pub ino: u64,
    /// Another orchestrator's name when nvme-cli 3's registry records the controller as theirs
    /// (see [`crate::registry`]): not ours to use, read or delete. Filled by the kernel seam
    /// from /run, not from sysfs, and in a scan for discovery controllers only (no decision
    /// reads an I/O controller's claim).
    pub claimed_by: Option<String>,
}

impl Controller {
    /// The address fields from the `address` attribute's text.
    fn set_address(&mut self, address: &str) {
        let a = parse_address(address);
        self.traddr = a.traddr.to_owned();
        self.trsvcid = a.trsvcid.to_owned();
        self.host_traddr = a.host_traddr.to_owned();
        self.host_iface = a.host_iface.to_owned();
        self.src_addr = a.src_addr.to_owned();
    }

    pub fn is_discovery(&self) -> bool {
        self.subsysnqn == DISCOVERY_NQN || self.cntrltype == "discovery"
    }

    /// The address as a table key; the host NQN is left empty (the caller knows its default).
    pub fn to_addr(&self) -> Option<TransportAddr> {
        TransportAddr::new(
            self.transport,
            &self.traddr,
            &self.trsvcid,
            &self.host_traddr,
            &self.host_iface,
        )
        .ok()
    }
}

/// The controller a write of `options` created as `nvme{instance}`, as its sysfs directory shows
/// it: the kernel prints back the options it was given (`address` from the transport address
/// options, `subsysnqn`, `hostnqn`), with the service ID defaulted as the drivers do (TCP 8009,
/// `NVME_TCP_DISC_PORT`; RDMA 4420). Read back per connect, that was 10 attributes (~30 syscalls, more
/// than the write's own 4). Left out: the state and identity (the caller reads them from sysfs),
/// the source address the kernel picked (`src_addr`; a later scan has it), and `cntrltype`
/// (empty, as on a kernel before 5.18). `None` without a known transport.
pub fn written(options: &str, instance: u32, cntlid: u16) -> Option<Controller> {
    let opt = |key: &str| {
        options
            .split(',')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
    };
    let transport = Transport::from_name(opt("transport"))?;
    let trsvcid = match opt("trsvcid") {
        "" => transport.default_discovery_trsvcid().unwrap_or(""),
        s => s,
    };
    Some(Controller {
        name: format!("nvme{instance}"),
        instance,
        transport,
        traddr: opt("traddr").to_owned(),
        trsvcid: trsvcid.to_owned(),
        host_traddr: opt("host_traddr").to_owned(),
        host_iface: opt("host_iface").to_owned(),
        src_addr: String::new(),
        subsysnqn: opt("nqn").to_owned(),
        state: CtrlState::New,
        cntrltype: String::new(),
        hostnqn: opt("hostnqn").to_owned(),
        cntlid: Some(cntlid),
        ino: 0,
        claimed_by: None,
    })
}

/// `nvme` followed by digits: the only names we build paths from (they may come from a uevent).
pub fn instance_of(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("nvme")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// /sys/class/nvme (and the FC replay trigger) under a configurable sysfs root.
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
    /// The fabrics controllers of the last [`Sysfs::scan`], by instance: the next scan reads
    /// again only what a controller can change while it lives (see [`Sysfs::refresh`]).
    known: std::cell::RefCell<Vec<Known>>,
}

/// A controller of the last scan and the inode number of its /sys/class/nvme link then.
#[derive(Debug, Clone)]
struct Known {
    ctrl: Controller,
    link: u64,
}

/// What [`Sysfs::scan`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The controllers asked for, by instance.
    pub ctrls: Vec<Controller>,
    /// The highest [`Controller::ino`] among all fabrics controllers, asked for or not (0 when
    /// none): a controller with a higher one was made after this scan.
    pub newest_ino: u64,
}

impl Sysfs {
    pub fn new(sys_root: &Path) -> Sysfs {
        Sysfs {
            root: sys_root.to_path_buf(),
            known: Default::default(),
        }
    }

    fn class_dir(&self) -> PathBuf {
        self.root.join("class/nvme")
    }

    fn ctrl_dir(&self, name: &str) -> Result<PathBuf> {
        match instance_of(name) {
            Some(_) => Ok(self.class_dir().join(name)),
            None => Err(Error::invalid(
                format!(
                    "find controller \"{}\"",
                    crate::fabrics::escape_preview(name.as_bytes())
                ),
                "not an nvmeN name",
            )),
        }
    }

    /// Every fabrics controller, by instance. One that cannot be read (not live yet, gone during the
    /// scan) is skipped with a debug line.
    pub fn controllers(&self) -> Vec<Controller> {
        self.scan(|_| true).ctrls
    }

    /// The fabrics controllers `wanted` takes, by instance, and the newest identity among all.
    ///
    /// A controller of the last scan that `wanted` does not take, that was live (identified)
    /// then and whose name still holds the same /sys/class/nvme link, is not read at all: the
    /// link is a kernfs node made with the controller's device and gone with it, so an equal
    /// inode number in the directory listing (no syscall of its own) is the same controller,
    /// and what `wanted` may look at of a live one (transport, address, NQNs, type) is what it
    /// was created or identified with. A run choosing a discovery controller among 64 of ours
    /// read all 64 (about 14 syscalls each, their registry claims included) for the one it
    /// needed, and each of 64 startup runs did so. A record kept this way is the last scan's: its
    /// state may be older, and it is read again by the next scan that asks for it.
    ///
    /// Link inode numbers are unique for the boot since kernfs allocates them cyclically (4.14;
    /// with a generation in the high bits on 64-bit since 5.5; see [`Sysfs::identity`]). Older
    /// kernels hand out the lowest free number, and a name passed on could show its old link's.
    pub fn scan(&self, wanted: impl Fn(&Controller) -> bool) -> Scan {
        use std::os::unix::fs::DirEntryExt;
        let dir = self.class_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                debug!("no controllers: cannot read {}: {e}", dir.display());
                self.known.take();
                return Scan::default();
            }
        };
        let known = self.known.take();
        let mut now: Vec<Known> = Vec::with_capacity(known.len());
        for (instance, name, link) in entries
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.ino(), e.file_name().into_string().ok()?)))
            .filter_map(|(link, name)| Some((instance_of(&name)?, name, link)))
        {
            let seen = known
                .binary_search_by_key(&instance, |k| k.ctrl.instance)
                .ok()
                .and_then(|at| known.get(at))
                .filter(|k| k.link == link);
            if let Some(k) = seen.filter(|k| k.ctrl.state == CtrlState::Live && !wanted(&k.ctrl)) {
                now.push(k.clone());
                continue;
            }
            let read = match seen {
                Some(k) => self.refresh(&k.ctrl),
                None => self.read_controller(&name),
            };
            match read {
                Ok(Some(ctrl)) => now.push(Known { ctrl, link }),
                Ok(None) => {}
                Err(e) => debug!("skipping {name}: {e}"),
            }
        }
        now.sort_by_key(|k| k.ctrl.instance);
        let scan = Scan {
            newest_ino: now.iter().map(|k| k.ctrl.ino).max().unwrap_or(0),
            ctrls: now
                .iter()
                .filter(|k| wanted(&k.ctrl))
                .map(|k| k.ctrl.clone())
                .collect(),
        };
        self.known.replace(now);
        scan
    }

    /// `prev` as it is now, from the last scan. What a live controller was created with
    /// (transport, target address, NQNs) stays for its life, so while it is live now, was live
    /// then and its directory has the same identity, only what can change is read again: the
    /// state, a TCP controller's `address` (the source address shows only while queue 0 is
    /// connected and is picked again on reconnect), and a discovery controller's cntlid (a
    /// reconnect may change it, and [`crate::ownership`] says so). `cntrltype` is assigned
    /// again from Identify on reconnect too; a target does not change it, and it is kept.
    ///
    /// A controller that was not live at the last scan is read whole: before its first
    /// Identify its directory is there already, with `cntrltype` `reserved` and a subsystem
    /// NQN that is not yet the target's, and a record of that moment must not outlive it.
    /// The reads come before the stat: a directory with `prev`'s identity at the stat has been
    /// `prev`'s since the last scan (a name never returns to a controller that left it), so
    /// the reads are `prev`'s too. Another identity, another state or a read that fails, and
    /// the controller is read whole. "Live" stands for "identified" here: see
    /// [`Sysfs::read_attributes`] for why a live record has the target's values.
    /// An I/O controller's cntlid is the one of its first scan.
    fn refresh(&self, prev: &Controller) -> Result<Option<Controller>> {
        if prev.state != CtrlState::Live {
            return self.read_controller(&prev.name);
        }
        let dir = self.ctrl_dir(&prev.name)?;
        let state = read_attr(&dir, "state").map(|s| CtrlState::parse(&s));
        let address = match prev.transport {
            Transport::Tcp => read_attr(&dir, "address").map(Some),
            _ => Ok(None),
        };
        let cntlid = match prev.is_discovery() {
            true => read_attr(&dir, "cntlid").map(|s| s.parse().ok()),
            false => Ok(prev.cntlid),
        };
        match (state, address, cntlid, identity_of(&dir)) {
            (Ok(CtrlState::Live), Ok(address), Ok(cntlid), Ok(ino)) if ino == prev.ino => {
                let mut now = Controller {
                    state: CtrlState::Live,
                    cntlid,
                    ..prev.clone()
                };
                if let Some(address) = address {
                    now.set_address(&address);
                }
                Ok(Some(now))
            }
            _ => self.read_controller(&prev.name),
        }
    }

    /// One fabrics controller; an error if it is unreadable or not a fabrics controller.
    pub fn controller(&self, name: &str) -> Result<Controller> {
        self.read_controller(name)?.ok_or_else(|| {
            Error::invalid(
                format!("read controller {name}"),
                "not a fabrics controller",
            )
        })
    }

    /// `made` (see [`written`]) with its state and identity from sysfs; `None` when it is gone
    /// already. Should it be deleted and its name taken by the next controller in the moment
    /// after our write, the record pairs our options with that one's identity, as a whole read
    /// would have mixed their attributes and as the registry entry written in that moment does;
    /// it is used to skip entries already connected in this run and to list what the run saw.
    pub fn complete(&self, made: Controller) -> Result<Option<Controller>> {
        let dir = self.ctrl_dir(&made.name)?;
        let gone = |e: &Error| e.errno() == Some(rustix::io::Errno::NOENT);
        let state = match read_attr(&dir, "state") {
            Ok(s) => CtrlState::parse(&s),
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        match identity_of(&dir) {
            Ok(ino) => Ok(Some(Controller { state, ino, ..made })),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `Ok(None)` for a controller that is not over fabrics (PCIe, Apple...). The directory's
    /// identity is taken before and after the attributes: should the name pass to another
    /// controller in between, the record would mix the two, so it is read once more, and an
    /// error (the controller skipped by a scan) if that happens again.
    fn read_controller(&self, name: &str) -> Result<Option<Controller>> {
        self.read_checked(name, || {})
    }

    /// [`Sysfs::read_controller`] with `between` run after the attributes and before the second
    /// stat (tests pass another controller the name there).
    fn read_checked(&self, name: &str, mut between: impl FnMut()) -> Result<Option<Controller>> {
        let dir = self.ctrl_dir(name)?;
        for _ in 0..2 {
            let ino = identity_of(&dir)?;
            let read = self.read_attributes(name, &dir, ino)?;
            between();
            if identity_of(&dir)? == ino {
                return Ok(read);
            }
        }
        Err(Error::invalid(
            format!("read controller {name}"),
            "its name passed to another controller while it was read, twice",
        ))
    }

    /// The state is read before what Identify fills in: a controller goes live only after its
    /// first Identify (the transports' setup: admin queue, `nvme_init_ctrl_finish`, I/O queues,
    /// then `LIVE`), so a record that says live has the target's subsystem NQN and controller
    /// type, and [`Sysfs::refresh`] may keep them. Read the other way round, a controller that
    /// went live between the two reads would keep its pre-Identify NQN for good.
    fn read_attributes(&self, name: &str, dir: &Path, ino: u64) -> Result<Option<Controller>> {
        let instance = instance_of(name).unwrap_or_default();
        let Some(transport) = Transport::from_name(&read_attr(dir, "transport")?) else {
            return Ok(None);
        };
        let state = CtrlState::parse(&read_attr(dir, "state")?);
        let address = read_attr(dir, "address")?;
        let optional = |attr| read_attr(dir, attr).unwrap_or_default();
        let subsysnqn = read_attr(dir, "subsysnqn")?;
        let cntrltype = optional("cntrltype");
        let cntlid = match subsysnqn == DISCOVERY_NQN || cntrltype == "discovery" {
            true => optional("cntlid").parse().ok(),
            false => None,
        };
        let mut c = Controller {
            name: name.to_owned(),
            instance,
            transport,
            traddr: String::new(),
            trsvcid: String::new(),
            host_traddr: String::new(),
            host_iface: String::new(),
            src_addr: String::new(),
            subsysnqn,
            state,
            cntrltype,
            hostnqn: optional("hostnqn"),
            cntlid,
            ino,
            claimed_by: None,
        };
        c.set_address(&address);
        Ok(Some(c))
    }

    /// Who /dev/nvme`name` is right now: the kernfs inode number of its sysfs directory, `None`
    /// when there is no such controller.
    ///
    /// Why the inode: the instance number is an IDA slot the kernel hands to the next controller
    /// as soon as it is freed, and the cntlid is the target's choice, changed by a reconnect or
    /// reset (nvmet and arrays do). kernfs gives every node it creates an id from a cyclic IDR
    /// with a generation count in the high 32 bits (fs/kernfs/dir.c `kernfs_new_node`), and on
    /// 64-bit the inode number is that whole id (`kernfs_ino`): a controller keeps it across
    /// resets and reconnects, and a new controller under the same name gets another one for the
    /// rest of the boot. On 32-bit only the low 32 bits show, reused after 2^31 creations.
    pub fn identity(&self, name: &str) -> Result<Option<u64>> {
        let dir = self.ctrl_dir(name)?;
        match rustix::fs::stat(&dir) {
            Ok(st) => Ok(Some(st.st_ino)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::os(format!("stat {}", dir.display()), e)),
        }
    }

    /// `nvme_core.admin_timeout`: how long the kernel waits for a command on the admin queue,
    /// its Fabrics Connect and authentication included. [`DEFAULT_ADMIN_TIMEOUT`] when the
    /// parameter cannot be read (the path is there with nvme_core built in, too).
    pub fn admin_timeout(&self) -> std::time::Duration {
        read_attr(
            &self.root.join("module/nvme_core/parameters"),
            "admin_timeout",
        )
        .ok()
        .and_then(|t| parse_admin_timeout(&t))
        .unwrap_or(DEFAULT_ADMIN_TIMEOUT)
    }

    pub fn state(&self, name: &str) -> Result<CtrlState> {
        Ok(CtrlState::parse(&read_attr(
            &self.ctrl_dir(name)?,
            "state",
        )?))
    }

    /// Ask the kernel to delete a controller. EBUSY (it never started) keeps its errno for the caller.
    pub fn delete_controller(&self, name: &str) -> Result<()> {
        let path = self.ctrl_dir(name)?.join("delete_controller");
        write_attr(&path, "1").map_err(|e| match e.errno() {
            Some(rustix::io::Errno::BUSY) => Error::os(
                format!("delete controller {name} (busy: it has not finished starting)"),
                rustix::io::Errno::BUSY,
            ),
            _ => e,
        })
    }

    /// Make the FC transport replay its `nvmediscovery` events for every port pair, as nvme-cli's
    /// nvmefc-boot-connections.service does. `Ok(false)` when there is no FC transport.
    pub fn fc_replay(&self) -> Result<bool> {
        let path = self.root.join("class/fc/fc_udev_device/nvme_discovery");
        if !path.exists() {
            return Ok(false);
        }
        write_attr(&path, "add")?;
        Ok(true)
    }
}

/// An attribute's value without the trailing newline.
///
/// Read through a stack buffer: sysfs reports every attribute as 4096 bytes long, so
/// `read_to_string` would reserve a page per attribute, and a scan of many controllers would
/// hold megabytes for strings of a few dozen bytes. An attribute is at most a page.
fn read_attr(dir: &Path, attr: &str) -> Result<String> {
    use rustix::fs::{Mode, OFlags};
    let path = dir.join(attr);
    let what = || format!("read {}", path.display());
    let fd =
        rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).context(what)?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            // A sysfs attribute is rendered whole (at most a page) and handed out by the first
            // read: a short read is its end, and the read that would return 0 is one syscall of
            // four per attribute saved (a rescan of 64 controllers reads ~2,000 of them).
            Ok(n) if n < buf.len() - len => {
                len += n;
                break;
            }
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os(what(), e)),
        }
    }
    let text = std::str::from_utf8(&buf[..len]).map_err(|_| Error::invalid(what(), "not UTF-8"))?;
    Ok(text.trim_end_matches('\n').to_owned())
}

/// The parameter's default (60 s).
pub const DEFAULT_ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The module parameter's text (seconds, a decimal `uint`) as a duration. 0 is taken by the
/// kernel and leaves the admin queue at blk-mq's own default timeout, 30 s.
pub fn parse_admin_timeout(text: &str) -> Option<std::time::Duration> {
    match text.trim().parse::<u32>() {
        Ok(0) => Some(std::time::Duration::from_secs(30)),
        Ok(s) => Some(std::time::Duration::from_secs(u64::from(s))),
        Err(_) => None,
    }
}

/// The inode number of `dir` (following the /sys/class/nvme symlink to the device directory).
fn identity_of(dir: &Path) -> Result<u64> {
    rustix::fs::stat(dir)
        .map(|st| st.st_ino)
        .context(|| format!("stat {}", dir.display()))
}

/// Write without creating: a missing attribute is an error, never a new file.
fn write_attr(path: &Path, value: &str) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let what = || format!("write {value} to {}", path.display());
    let fd =
        rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).context(what)?;
    match rustix::io::write(&fd, value.as_bytes()).context(what)? {
        n if n == value.len() => Ok(()),
        n => Err(Error::invalid(what(), format!("short write of {n} bytes"))),
    }
}

/// An IP address without its `%scope`, with IPv4-mapped IPv6 turned into IPv4.
fn parse_ip(s: &str) -> Option<(IpAddr, &str)> {
    let (ip, scope) = s.split_once('%').unwrap_or((s, ""));
    let ip = match ip.parse().ok()? {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Some((ip, scope))
}

/// Equal transport addresses: as IP addresses for TCP and RDMA, ignoring case for FC and loop.
pub fn same_addr(t: Transport, a: &str, b: &str) -> bool {
    match t {
        Transport::Tcp | Transport::Rdma => {
            a == b || matches!((parse_ip(a), parse_ip(b)), (Some(x), Some(y)) if x == y)
        }
        Transport::Fc | Transport::Loop => a.eq_ignore_ascii_case(b),
    }
}

/// Equal when both are set; an unset side matches anything.
fn same_if_both(t: Transport, a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || same_addr(t, a, b)
}

/// The service ID sysfs shows for a TCP controller made for `addr`: the kernel fills in 8009
/// when none is given.
fn tcp_trsvcid(addr: &TransportAddr) -> &str {
    match addr.trsvcid.as_str() {
        "" => Transport::Tcp.default_discovery_trsvcid().unwrap_or(""),
        s => s,
    }
}

fn tcp_matches(c: &Controller, addr: &TransportAddr) -> bool {
    let trsvcid = tcp_trsvcid(addr);
    if c.trsvcid != trsvcid || !same_addr(Transport::Tcp, &c.traddr, addr.traddr.as_str()) {
        return false;
    }
    let host_traddr = addr.host_traddr.as_str();
    let local = if c.host_traddr.is_empty() {
        &c.src_addr
    } else {
        &c.host_traddr
    };
    (host_traddr.is_empty() || same_if_both(Transport::Tcp, local, host_traddr))
        && same_if_both(Transport::Tcp, &c.host_iface, addr.host_iface.as_str())
}

/// Is `c` the controller we would create for `subsysnqn` at `addr` as `hostnqn`? Rules in the module docs.
pub fn matches(c: &Controller, addr: &TransportAddr, subsysnqn: &str, hostnqn: &str) -> bool {
    let t = addr.transport;
    if c.transport != t {
        return false;
    }
    if !c.hostnqn.is_empty() && !hostnqn.is_empty() && c.hostnqn != hostnqn {
        return false;
    }
    let nqn_ok = if subsysnqn == DISCOVERY_NQN {
        c.is_discovery()
    } else {
        c.subsysnqn == subsysnqn
    };
    if !nqn_ok {
        return false;
    }
    if t == Transport::Tcp {
        return tcp_matches(c, addr);
    }
    let trsvcid = addr.trsvcid.as_str();
    same_if_both(t, &c.traddr, addr.traddr.as_str())
        && (c.trsvcid.is_empty() || trsvcid.is_empty() || c.trsvcid == trsvcid)
        && same_if_both(t, &c.host_traddr, addr.host_traddr.as_str())
        && same_if_both(t, &c.host_iface, addr.host_iface.as_str())
}

/// Could `c` be the connection of a log entry (whose NQN is never the well-known discovery
/// NQN): any controller but a discovery controller with that NQN.
pub fn may_be_entry(c: &Controller) -> bool {
    !(c.is_discovery() && c.subsysnqn == DISCOVERY_NQN)
}

/// Could `c` be what [`crate::ownership::choose_dc`] looks for at `addr`: the controller under
/// the `recorded` number, or a discovery controller of the transport whose target address may
/// be `addr`'s (a superset of [`matches`]; the choice applies the full rules).
pub fn may_serve(c: &Controller, addr: &TransportAddr, recorded: Option<u32>) -> bool {
    let t = c.transport;
    let trsvcid = match t {
        Transport::Tcp => tcp_trsvcid(addr),
        _ => addr.trsvcid.as_str(),
    };
    recorded == Some(c.instance)
        || (c.is_discovery()
            && t == addr.transport
            && same_if_both(t, &c.traddr, addr.traddr.as_str())
            && (c.trsvcid.is_empty() || trsvcid.is_empty() || c.trsvcid == trsvcid))
}

/// The controller for `subsysnqn` at `addr`, ignoring ones that are going away; a live one first.
pub fn find<'c>(
    ctrls: &'c [Controller],
    addr: &TransportAddr,
    subsysnqn: &str,
    hostnqn: &str,
) -> Option<&'c Controller> {
    let mut usable = ctrls
        .iter()
        .filter(|c| !c.state.is_going_away() && matches(c, addr, subsysnqn, hostnqn));
    let first = usable.clone().next();
    usable.find(|c| c.state == CtrlState::Live).or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "nqn.2024-01.io.example:disk1";
    const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:3f1e2d4c-5b6a-4789-8abc-def012345678";
    const FC_T: &str = "nn-0x20000090fa942779:pn-0x10000090fa942779";
    const FC_H: &str = "nn-0x20000090fae0b5f5:pn-0x10000090fae0b5f5";

    fn temp_root(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("nvme-monitor-sysfs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A controller directory with the attributes as the kernel prints them (newline-terminated).
    fn fake_ctrl(root: &Path, name: &str, attrs: &[(&str, &str)]) {
        let dir = root.join("class/nvme").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (attr, value) in attrs {
            std::fs::write(dir.join(attr), format!("{value}\n")).unwrap();
        }
    }

    fn fake_tree(name: &str) -> PathBuf {
        let root = temp_root(name);
        let common = |nqn: &'static str, state: &'static str| {
            [
                ("subsysnqn", nqn),
                ("state", state),
                ("hostnqn", HOST),
                ("delete_controller", ""),
            ]
        };
        let mut loop_dc = vec![
            ("transport", "loop"),
            ("address", ""),
            ("cntrltype", "discovery"),
            ("dctype", "none"),
            ("cntlid", "1"),
        ];
        loop_dc.extend(common(DISCOVERY_NQN, "live"));
        fake_ctrl(&root, "nvme0", &loop_dc);
        let mut tcp = vec![
            ("transport", "tcp"),
            (
                "address",
                "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1",
            ),
            ("cntrltype", "io"),
            ("cntlid", "2"),
        ];
        tcp.extend(common(SUB, "live"));
        fake_ctrl(&root, "nvme1", &tcp);
        let fc_addr = format!("traddr={FC_T},host_traddr={FC_H}");
        let mut fc = vec![("transport", "fc"), ("address", fc_addr.as_str())];
        fc.extend(common(SUB, "connecting"));
        fake_ctrl(&root, "nvme12", &fc);
        fake_ctrl(
            &root,
            "nvme3",
            &[
                ("transport", "pcie"),
                ("address", "0000:01:00.0"),
                ("state", "live"),
            ],
        );
        // Not live yet: no subsysnqn to read.
        fake_ctrl(
            &root,
            "nvme4",
            &[
                ("transport", "tcp"),
                ("address", "traddr=10.0.0.9,trsvcid=4420"),
                ("state", "new"),
            ],
        );
        let mut gone = vec![
            ("transport", "tcp"),
            ("address", "traddr=127.0.0.1,trsvcid=4420"),
        ];
        gone.extend(common(SUB, "deleting (no IO)"));
        fake_ctrl(&root, "nvme5", &gone);
        fake_ctrl(&root, "nvmefoo", &[("transport", "tcp")]);
        root
    }

    #[test]
    fn scan_skips_pcie_and_unreadable_controllers() {
        let root = fake_tree("scan");
        let sys = Sysfs::new(&root);
        let ctrls = sys.controllers();
        let names: Vec<&str> = ctrls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["nvme0", "nvme1", "nvme5", "nvme12"]);

        let dc = &ctrls[0];
        assert_eq!(
            (dc.transport, dc.instance, dc.cntlid),
            (Transport::Loop, 0, Some(1))
        );
        assert!(dc.is_discovery() && dc.traddr.is_empty());
        let tcp = &ctrls[1];
        assert_eq!(
            (
                tcp.traddr.as_str(),
                tcp.trsvcid.as_str(),
                tcp.src_addr.as_str()
            ),
            ("127.0.0.1", "4420", "127.0.0.1")
        );
        assert_eq!(
            (tcp.state, tcp.hostnqn.as_str(), tcp.cntlid),
            (CtrlState::Live, HOST, None)
        );
        assert!(!tcp.is_discovery());
        assert_eq!(ctrls[2].state, CtrlState::DeletingNoIo);
        let fc = &ctrls[3];
        assert_eq!(
            (fc.instance, fc.traddr.as_str(), fc.host_traddr.as_str()),
            (12, FC_T, FC_H)
        );
        assert_eq!((fc.cntrltype.as_str(), fc.cntlid), ("", None));
        assert_eq!(
            fc.to_addr().unwrap().to_string(),
            format!("fc traddr={FC_T},host_traddr={FC_H}")
        );

        assert!(
            sys.controller("nvme3")
                .unwrap_err()
                .to_string()
                .contains("not a fabrics controller")
        );
        assert!(
            sys.controller("nvme4")
                .unwrap_err()
                .to_string()
                .contains("subsysnqn")
        );
        assert!(sys.controller("nvme99").is_err());
        assert_eq!(sys.controller("nvme1").unwrap(), ctrls[1]);
        assert_eq!(sys.state("nvme12").unwrap(), CtrlState::Connecting);
        for bad in ["../nvme1", "nvme", "nvme1/..", "nvme-fabrics", ""] {
            assert!(sys.controller(bad).is_err(), "{bad}");
        }
        assert!(Sysfs::new(&root.join("nowhere")).controllers().is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn delete_and_fc_replay_write_existing_attributes_only() {
        let root = fake_tree("write");
        let sys = Sysfs::new(&root);
        sys.delete_controller("nvme1").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("class/nvme/nvme1/delete_controller")).unwrap(),
            "1"
        );
        assert!(sys.delete_controller("nvme3").is_err());
        assert!(!root.join("class/nvme/nvme3/delete_controller").exists());
        assert!(sys.delete_controller("nvme1/../nvme3").is_err());

        assert!(!sys.fc_replay().unwrap());
        let trigger = root.join("class/fc/fc_udev_device/nvme_discovery");
        std::fs::create_dir_all(trigger.parent().unwrap()).unwrap();
        std::fs::write(&trigger, "").unwrap();
        assert!(sys.fc_replay().unwrap());
        assert_eq!(std::fs::read_to_string(&trigger).unwrap(), "add");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn admin_timeout_from_the_module_parameter() {
        use std::time::Duration;
        let root = temp_root("admin-timeout");
        let sys = Sysfs::new(&root);
        assert_eq!(
            sys.admin_timeout(),
            DEFAULT_ADMIN_TIMEOUT,
            "no nvme_core module directory"
        );
        let dir = root.join("module/nvme_core/parameters");
        std::fs::create_dir_all(&dir).unwrap();
        for (text, want) in [
            ("10\n", Duration::from_secs(10)),
            ("255\n", Duration::from_secs(255)),
            ("0\n", Duration::from_secs(30)),
            ("-1\n", DEFAULT_ADMIN_TIMEOUT),
            ("ten\n", DEFAULT_ADMIN_TIMEOUT),
            ("", DEFAULT_ADMIN_TIMEOUT),
        ] {
            std::fs::write(dir.join("admin_timeout"), text).unwrap();
            assert_eq!(sys.admin_timeout(), want, "{text:?}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn address_attribute() {
        let a = parse_address(
            "traddr=192.168.1.3,trsvcid=8009,host_traddr=none,host_iface=eth0,src_addr=192.168.1.10\n",
        );
        assert_eq!(
            a,
            Address {
                traddr: "192.168.1.3",
                trsvcid: "8009",
                host_traddr: "",
                host_iface: "eth0",
                src_addr: "192.168.1.10"
            }
        );
        assert_eq!(parse_address(""), Address::default());
        assert_eq!(parse_address("\n"), Address::default());
        let a = parse_address("traddr=fe80::1%eth0,trsvcid=4420,future=x=y,junk\n");
        assert_eq!(
            (a.traddr, a.trsvcid, a.src_addr),
            ("fe80::1%eth0", "4420", "")
        );
        assert_eq!(
            parse_address(&format!("traddr={FC_T},host_traddr={FC_H}")).host_traddr,
            FC_H
        );
    }

    #[test]
    fn state_names() {
        assert_eq!(
            CtrlState::parse("deleting (no IO)\n"),
            CtrlState::DeletingNoIo
        );
        assert_eq!(CtrlState::parse("live\n"), CtrlState::Live);
        assert_eq!(CtrlState::parse("connecting"), CtrlState::Connecting);
        assert_eq!(CtrlState::parse("frozen"), CtrlState::Other);
        assert!(CtrlState::Dead.is_going_away() && !CtrlState::Resetting.is_going_away());
    }

    fn ctrl(t: Transport, nqn: &str, address: &str) -> Controller {
        let a = parse_address(address);
        Controller {
            name: "nvme1".into(),
            instance: 1,
            transport: t,
            traddr: a.traddr.into(),
            trsvcid: a.trsvcid.into(),
            host_traddr: a.host_traddr.into(),
            host_iface: a.host_iface.into(),
            src_addr: a.src_addr.into(),
            subsysnqn: nqn.into(),
            state: CtrlState::Live,
            cntrltype: String::new(),
            hostnqn: HOST.into(),
            cntlid: Some(1),
            ino: 1,
            claimed_by: None,
        }
    }

    fn addr(
        t: Transport,
        traddr: &str,
        trsvcid: &str,
        host_traddr: &str,
        iface: &str,
    ) -> TransportAddr {
        TransportAddr::new(t, traddr, trsvcid, host_traddr, iface).unwrap()
    }

    #[test]
    fn tcp_matching() {
        let c = ctrl(
            Transport::Tcp,
            SUB,
            "traddr=192.168.1.3,trsvcid=4420,src_addr=192.168.1.10",
        );
        let m = |a: &TransportAddr| matches(&c, a, SUB, HOST);
        assert!(m(&addr(Transport::Tcp, "192.168.1.3", "4420", "", "")));
        assert!(m(&addr(
            Transport::Tcp,
            "::ffff:192.168.1.3",
            "4420",
            "",
            ""
        )));
        // host_traddr against src_addr when the controller was created without one.
        assert!(m(&addr(
            Transport::Tcp,
            "192.168.1.3",
            "4420",
            "192.168.1.10",
            ""
        )));
        assert!(!m(&addr(
            Transport::Tcp,
            "192.168.1.3",
            "4420",
            "192.168.1.11",
            ""
        )));
        // No interface table: a host_iface we cannot check is assumed to match (libnvme's choice).
        assert!(m(&addr(Transport::Tcp, "192.168.1.3", "4420", "", "eth0")));
        assert!(!m(&addr(Transport::Tcp, "192.168.1.3", "8009", "", "")));
        assert!(!m(&addr(Transport::Tcp, "192.168.1.4", "4420", "", "")));
        assert!(!m(&addr(Transport::Rdma, "192.168.1.3", "4420", "", "")));
        assert!(!matches(
            &c,
            &addr(Transport::Tcp, "192.168.1.3", "4420", "", ""),
            "nqn.other",
            HOST
        ));
        assert!(!matches(
            &c,
            &addr(Transport::Tcp, "192.168.1.3", "4420", "", ""),
            SUB,
            "nqn.other-host"
        ));
        assert!(matches(
            &c,
            &addr(Transport::Tcp, "192.168.1.3", "4420", "", ""),
            SUB,
            ""
        ));

        let pinned = ctrl(
            Transport::Tcp,
            SUB,
            "traddr=192.168.1.3,trsvcid=4420,host_traddr=192.168.1.10,host_iface=eth1",
        );
        assert!(matches(
            &pinned,
            &addr(
                Transport::Tcp,
                "192.168.1.3",
                "4420",
                "192.168.1.10",
                "eth1"
            ),
            SUB,
            HOST
        ));
        assert!(!matches(
            &pinned,
            &addr(Transport::Tcp, "192.168.1.3", "4420", "", "eth0"),
            SUB,
            HOST
        ));
        // Without src_addr (kernel < 6.1) and no host_traddr: optimistic, as libnvme.
        let old = ctrl(Transport::Tcp, SUB, "traddr=192.168.1.3,trsvcid=4420");
        assert!(matches(
            &old,
            &addr(Transport::Tcp, "192.168.1.3", "4420", "192.168.1.99", ""),
            SUB,
            HOST
        ));
    }

    #[test]
    fn discovery_controller_matching() {
        // Default trsvcid: the kernel fills in 8009 and sysfs shows it.
        let mut dc = ctrl(
            Transport::Tcp,
            "nqn.1988-11.com.dell:SFSS:1:20230101",
            "traddr=10.0.0.1,trsvcid=8009",
        );
        let a = addr(Transport::Tcp, "10.0.0.1", "", "", "");
        assert!(!matches(&dc, &a, DISCOVERY_NQN, HOST));
        dc.cntrltype = "discovery".into();
        assert!(matches(&dc, &a, DISCOVERY_NQN, HOST));
        assert!(matches(
            &dc,
            &a,
            "nqn.1988-11.com.dell:SFSS:1:20230101",
            HOST
        ));
        let io = ctrl(Transport::Tcp, SUB, "traddr=10.0.0.1,trsvcid=8009");
        assert!(!matches(&io, &a, DISCOVERY_NQN, HOST));
    }

    #[test]
    fn fc_rdma_and_loop_matching() {
        let fc = ctrl(
            Transport::Fc,
            SUB,
            &format!("traddr={FC_T},host_traddr={FC_H}"),
        );
        assert!(matches(
            &fc,
            &addr(
                Transport::Fc,
                &FC_T.to_uppercase().replace("NN-0X", "nn-0x"),
                "",
                FC_H,
                ""
            ),
            SUB,
            HOST
        ));
        assert!(matches(
            &fc,
            &addr(Transport::Fc, FC_T, "", "", ""),
            SUB,
            HOST
        ));
        assert!(!matches(
            &fc,
            &addr(Transport::Fc, FC_T, "", FC_T, ""),
            SUB,
            HOST
        ));
        let rdma = ctrl(Transport::Rdma, SUB, "traddr=fe80::1%ib0,trsvcid=4420");
        assert!(matches(
            &rdma,
            &addr(Transport::Rdma, "fe80:0::1%ib0", "", "", ""),
            SUB,
            HOST
        ));
        assert!(!matches(
            &rdma,
            &addr(Transport::Rdma, "fe80::2%ib0", "4420", "", ""),
            SUB,
            HOST
        ));
        assert!(!matches(
            &rdma,
            &addr(Transport::Rdma, "fe80::1%ib0", "4421", "", ""),
            SUB,
            HOST
        ));
        let lp = ctrl(Transport::Loop, SUB, "");
        assert!(matches(
            &lp,
            &addr(Transport::Loop, "", "", "", ""),
            SUB,
            HOST
        ));
        assert!(matches(
            &lp,
            &addr(Transport::Loop, "1", "", "", ""),
            SUB,
            HOST
        ));
    }

    #[test]
    fn find_prefers_live_and_ignores_dying() {
        let mut dying = ctrl(Transport::Tcp, SUB, "traddr=10.0.0.1,trsvcid=4420");
        dying.state = CtrlState::Deleting;
        let mut connecting = dying.clone();
        connecting.state = CtrlState::Connecting;
        connecting.name = "nvme2".into();
        let mut live = dying.clone();
        live.state = CtrlState::Live;
        live.name = "nvme3".into();
        let a = addr(Transport::Tcp, "10.0.0.1", "4420", "", "");
        assert_eq!(find(&[dying.clone()], &a, SUB, HOST), None);
        let list = [dying.clone(), connecting.clone(), live.clone()];
        assert_eq!(find(&list, &a, SUB, HOST).unwrap().name, "nvme3");
        let list = [dying, connecting];
        assert_eq!(find(&list, &a, SUB, HOST).unwrap().name, "nvme2");
    }

    #[test]
    fn names() {
        assert_eq!(instance_of("nvme0"), Some(0));
        assert_eq!(instance_of("nvme123"), Some(123));
        for bad in [
            "nvme",
            "nvme-fabrics",
            "nvme1n1",
            "nvme+1",
            "nvme99999999999",
            "xnvme1",
            "nvme 1",
        ] {
            assert_eq!(instance_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_written_controller_is_what_sysfs_would_show() {
        // The string build_options makes for a TCP entry, secrets and tuning included.
        let o = format!(
            "nqn={SUB},transport=tcp,traddr=192.168.1.3,trsvcid=4420,host_traddr=192.168.1.10,\
host_iface=eth0,hostnqn={HOST},hostid=3f1e2d4c-5b6a-4789-8abc-def012345678,nr_io_queues=4,\
dhchap_secret=DHHC-1:00:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTIzNDU2Nzg5MDEy:,duplicate_connect"
        );
        let c = written(&o, 7, 3).unwrap();
        // As the kernel renders it (nvmf_get_address), without the source address it picks.
        let root = temp_root("written");
        fake_ctrl(
            &root,
            "nvme7",
            &[
                ("transport", "tcp"),
                (
                    "address",
                    "traddr=192.168.1.3,trsvcid=4420,host_traddr=192.168.1.10,host_iface=eth0",
                ),
                ("subsysnqn", SUB),
                ("state", "live"),
                ("hostnqn", HOST),
                ("hostid", "3f1e2d4c-5b6a-4789-8abc-def012345678"),
                ("cntlid", "3"),
            ],
        );
        let sys = Sysfs::new(&root);
        let read = sys.controller("nvme7").unwrap();
        let done = sys.complete(c.clone()).unwrap().unwrap();
        // An I/O controller's cntlid is not read from sysfs; we have the connect reply's.
        assert_eq!((done.cntlid, read.cntlid), (Some(3), None));
        let done = Controller {
            cntlid: None,
            ..done
        };
        assert_eq!(done, read, "written + state + identity == a whole read");
        assert!(!format!("{c:?}").contains("DHHC"), "no secret is kept");
        let a = TransportAddr::new(
            Transport::Tcp,
            "192.168.1.3",
            "4420",
            "192.168.1.10",
            "eth0",
        )
        .unwrap();
        assert!(matches(&c, &a, SUB, HOST));

        // The drivers' default service ID; loop without an address; no transport, no record.
        let tcp = written(&format!("nqn={SUB},transport=tcp,traddr=10.0.0.1"), 1, 1).unwrap();
        assert_eq!(tcp.trsvcid, "8009");
        let rdma = written(&format!("nqn={SUB},transport=rdma,traddr=10.0.0.1"), 1, 1).unwrap();
        assert_eq!(rdma.trsvcid, "4420");
        let lp = written(&format!("nqn={SUB},transport=loop,hostnqn={HOST}"), 2, 1).unwrap();
        assert_eq!((lp.traddr.as_str(), lp.trsvcid.as_str()), ("", ""));
        assert!(written(&format!("nqn={SUB},traddr=10.0.0.1"), 3, 1).is_none());
        assert!(written(&format!("nqn={SUB},transport=pcie"), 3, 1).is_none());

        // Gone before its state could be read: no record.
        std::fs::remove_dir_all(root.join("class/nvme/nvme7")).unwrap();
        assert_eq!(sys.complete(c).unwrap(), None);
    }

    /// Replace `name`'s directory by one with `attrs`, made before the old one goes so that it
    /// cannot get the old inode number (a reused name is a new kernfs node).
    fn replace_ctrl(root: &Path, name: &str, attrs: &[(&str, &str)]) {
        let class = root.join("class/nvme");
        fake_ctrl(root, &format!("{name}.new"), attrs);
        std::fs::remove_dir_all(class.join(name)).unwrap();
        std::fs::rename(class.join(format!("{name}.new")), class.join(name)).unwrap();
    }

    #[test]
    fn a_rescan_rereads_what_a_live_controller_can_change_and_the_rest_whole() {
        let root = fake_tree("rescan");
        let class = root.join("class/nvme");
        let put = |attr: &str, value: &str| std::fs::write(class.join(attr), format!("{value}\n"));
        // nvme12 is connecting and not identified yet: its directory shows what the kernel has
        // before the first Identify, not the target's values.
        put("nvme12/subsysnqn", "(efault)").unwrap();
        put("nvme12/cntrltype", "reserved").unwrap();
        let sys = Sysfs::new(&root);
        let first = sys.controllers();
        assert_eq!(first[3].subsysnqn, "(efault)");

        // The DC reconnected with another cntlid; nvme1 reconnected from another source address
        // and with another cntlid; nvme12 came up.
        put("nvme0/cntlid", "9").unwrap();
        put(
            "nvme1/address",
            "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.2",
        )
        .unwrap();
        put("nvme1/cntlid", "8").unwrap();
        put("nvme12/subsysnqn", SUB).unwrap();
        put("nvme12/cntrltype", "io").unwrap();
        put("nvme12/state", "live").unwrap();
        // What a live controller cannot change is taken from the last scan, not read again.
        put("nvme0/subsysnqn", "nqn.2024-01.io.example:other").unwrap();
        // nvme5 went; nvme4 came up; a new nvme6.
        std::fs::remove_dir_all(class.join("nvme5")).unwrap();
        put("nvme4/subsysnqn", SUB).unwrap();
        fake_ctrl(
            &root,
            "nvme6",
            &[
                ("transport", "tcp"),
                ("address", "traddr=10.0.0.6,trsvcid=4420"),
                ("subsysnqn", SUB),
                ("state", "live"),
            ],
        );
        let second = sys.controllers();
        let names: Vec<&str> = second.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["nvme0", "nvme1", "nvme4", "nvme6", "nvme12"]);
        assert_eq!(
            (second[0].cntlid, second[0].subsysnqn.as_str()),
            (Some(9), DISCOVERY_NQN),
            "a live discovery controller's cntlid, and its first subsystem NQN"
        );
        assert_eq!(
            (second[1].src_addr.as_str(), second[1].cntlid),
            ("127.0.0.2", first[1].cntlid),
            "a TCP controller's source address, and an I/O controller's first cntlid"
        );
        assert_eq!(second[2].traddr, "10.0.0.9");
        assert_eq!(
            (
                second[4].subsysnqn.as_str(),
                second[4].cntrltype.as_str(),
                second[4].state
            ),
            (SUB, "io", CtrlState::Live),
            "first read before its Identify: read whole once live"
        );

        // nvme1 resets: read whole while not live (its subsystem NQN as sysfs shows it then),
        // and whole again once it is back.
        put("nvme1/state", "resetting").unwrap();
        put("nvme1/subsysnqn", "nqn.2024-01.io.example:seen").unwrap();
        put("nvme12/subsysnqn", "nqn.2024-01.io.example:other").unwrap();
        let third = sys.controllers();
        assert_eq!(
            (third[1].state, third[1].subsysnqn.as_str()),
            (CtrlState::Resetting, "nqn.2024-01.io.example:seen")
        );
        assert_eq!(
            third[4], second[4],
            "live then and now: nothing read but state"
        );
        put("nvme1/state", "live").unwrap();
        put("nvme1/subsysnqn", SUB).unwrap();
        let fourth = sys.controllers();
        assert_eq!(
            (fourth[1].state, fourth[1].subsysnqn.as_str()),
            (CtrlState::Live, SUB)
        );

        // nvme1's number passes to another controller (another address, another identity):
        // read whole. A name whose state cannot be read is read whole, and skipped.
        replace_ctrl(
            &root,
            "nvme1",
            &[
                ("transport", "tcp"),
                ("address", "traddr=10.9.9.9,trsvcid=4420"),
                ("subsysnqn", "nqn.2024-01.io.example:disk9"),
                ("state", "live"),
            ],
        );
        std::fs::remove_file(class.join("nvme0/state")).unwrap();
        let fifth = sys.controllers();
        let names: Vec<&str> = fifth.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["nvme1", "nvme4", "nvme6", "nvme12"]);
        assert_ne!(fifth[0].ino, fourth[1].ino);
        assert_eq!(
            (fifth[0].traddr.as_str(), fifth[0].subsysnqn.as_str()),
            ("10.9.9.9", "nqn.2024-01.io.example:disk9")
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_name_passed_on_while_it_is_read_gives_the_new_controller_whole_or_nothing() {
        let root = fake_tree("midread");
        let sys = Sysfs::new(&root);
        let before = sys.controller("nvme1").unwrap();
        let other = [
            ("transport", "tcp"),
            ("address", "traddr=10.9.9.9,trsvcid=4420"),
            ("subsysnqn", "nqn.2024-01.io.example:disk9"),
            ("state", "live"),
        ];
        let mut swaps = 0;
        let read = sys
            .read_checked("nvme1", || {
                if swaps == 0 {
                    replace_ctrl(&root, "nvme1", &other);
                }
                swaps += 1;
            })
            .unwrap()
            .unwrap();
        assert_eq!(swaps, 2, "read once more after the name passed on");
        assert_ne!(read.ino, before.ino);
        assert_eq!(
            (
                read.traddr.as_str(),
                read.subsysnqn.as_str(),
                read.hostnqn.as_str()
            ),
            ("10.9.9.9", "nqn.2024-01.io.example:disk9", ""),
            "the new controller's attributes only, none of the old one's"
        );
        assert_eq!(read, sys.controller("nvme1").unwrap());
        // Passed on during every read: an error (a scan skips it), never a mixed record.
        let err = sys
            .read_checked("nvme1", || replace_ctrl(&root, "nvme1", &other))
            .unwrap_err();
        assert!(
            err.to_string().contains("passed to another controller"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_scan_reads_only_what_it_asks_for_and_every_name_that_changed_hands() {
        let root = fake_tree("partial");
        let class = root.join("class/nvme");
        let put = |attr: &str, value: &str| std::fs::write(class.join(attr), format!("{value}\n"));
        let sys = Sysfs::new(&root);
        let all = sys.controllers();
        let newest = all.iter().map(|c| c.ino).max().unwrap();
        let dc_at = |c: &Controller| c.is_discovery();

        // The DC reconnected with another cntlid; the I/O controller nvme1 is resetting.
        put("nvme0/cntlid", "9").unwrap();
        put("nvme1/state", "resetting").unwrap();
        let scan = sys.scan(dc_at);
        let names: Vec<&str> = scan.ctrls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["nvme0"]);
        assert_eq!(scan.ctrls[0].cntlid, Some(9));
        assert_eq!(
            scan.newest_ino, newest,
            "over every controller, asked for or not"
        );
        let kept = |name: &str| {
            sys.known
                .borrow()
                .iter()
                .find(|k| k.ctrl.name == name)
                .map(|k| k.ctrl.state)
        };
        assert_eq!(kept("nvme1"), Some(CtrlState::Live), "nvme1 was not read");
        // nvme12 was not live: read whole whether asked for or not.
        put("nvme12/state", "live").unwrap();
        sys.scan(dc_at);
        assert_eq!(kept("nvme12"), Some(CtrlState::Live));
        let full = sys.controllers();
        assert_eq!(full[1].state, CtrlState::Resetting, "read when asked for");

        // nvme1's number passes to a discovery controller: a new link, read whole, found.
        put("nvme1/state", "live").unwrap();
        sys.controllers();
        replace_ctrl(
            &root,
            "nvme1",
            &[
                ("transport", "tcp"),
                ("address", "traddr=10.9.9.9,trsvcid=8009"),
                ("subsysnqn", DISCOVERY_NQN),
                ("cntrltype", "discovery"),
                ("cntlid", "4"),
                ("state", "live"),
            ],
        );
        let scan = sys.scan(dc_at);
        let names: Vec<&str> = scan.ctrls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["nvme0", "nvme1"]);
        assert_eq!(
            (scan.ctrls[1].traddr.as_str(), scan.ctrls[1].cntlid),
            ("10.9.9.9", Some(4))
        );
        assert!(scan.newest_ino >= scan.ctrls[1].ino);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_discovery_controller_may_serve_its_address_or_its_recorded_number() {
        let dc = |traddr: &str| Controller {
            subsysnqn: DISCOVERY_NQN.into(),
            cntrltype: "discovery".into(),
            ..ctrl(Transport::Tcp, DISCOVERY_NQN, traddr)
        };
        let at = addr(Transport::Tcp, "192.168.1.3", "8009", "", "");
        let serves = |c: &Controller, a: &TransportAddr| may_serve(c, a, None);
        assert!(serves(&dc("traddr=192.168.1.3,trsvcid=8009"), &at));
        assert!(serves(&dc("traddr=::ffff:192.168.1.3,trsvcid=8009"), &at));
        assert!(!serves(&dc("traddr=192.168.1.4,trsvcid=8009"), &at));
        // One IP, a port per discovery controller (as the bench's 64): only the one port.
        assert!(!serves(&dc("traddr=192.168.1.3,trsvcid=4421"), &at));
        let default_port = addr(Transport::Tcp, "192.168.1.3", "", "", "");
        assert!(serves(
            &dc("traddr=192.168.1.3,trsvcid=8009"),
            &default_port
        ));
        let io = ctrl(Transport::Tcp, SUB, "traddr=192.168.1.3,trsvcid=8009");
        assert!(!serves(&io, &at), "an I/O controller at the address");
        assert!(
            may_serve(&io, &at, Some(io.instance)),
            "the recorded number, whatever it holds"
        );
        let rdma = Controller {
            transport: Transport::Rdma,
            ..dc("traddr=192.168.1.3,trsvcid=8009")
        };
        assert!(!serves(&rdma, &at));
        // Whatever may_serve refuses, matches refuses too.
        for c in [
            dc("traddr=192.168.1.4,trsvcid=8009"),
            dc("traddr=192.168.1.3,trsvcid=4421"),
            io,
            rdma,
        ] {
            assert!(!matches(&c, &at, DISCOVERY_NQN, HOST));
            assert!(!matches(&c, &default_port, DISCOVERY_NQN, HOST));
        }
    }

    #[test]
    fn may_serve_takes_every_discovery_controller_matches_takes() {
        let unique = "nqn.2024-01.io.example:discovery";
        let mut ctrls = Vec::new();
        for (t, addrs) in [
            (
                Transport::Tcp,
                &[
                    "traddr=10.0.0.1,trsvcid=8009",
                    "traddr=10.0.0.1,trsvcid=4421",
                    "traddr=::ffff:10.0.0.1,trsvcid=8009",
                ][..],
            ),
            (
                Transport::Rdma,
                &[
                    "traddr=10.0.0.1,trsvcid=4420",
                    "traddr=10.0.0.1,trsvcid=4421",
                    "traddr=10.0.0.1",
                ][..],
            ),
            (
                Transport::Fc,
                &[
                    "traddr=NN-0x1:PN-0x2,host_traddr=nn-0x3:pn-0x4",
                    "traddr=nn-0x1:pn-0x2",
                ][..],
            ),
            (Transport::Loop, &[""][..]),
        ] {
            for a in addrs {
                for nqn in [DISCOVERY_NQN, unique] {
                    ctrls.push(Controller {
                        cntrltype: "discovery".into(),
                        ..ctrl(t, nqn, a)
                    });
                }
            }
        }
        let mut wanted = Vec::new();
        for (t, traddr) in [
            (Transport::Tcp, "10.0.0.1"),
            (Transport::Rdma, "10.0.0.1"),
            (Transport::Fc, "nn-0x1:pn-0x2"),
            (Transport::Loop, ""),
        ] {
            for svc in ["", "4420", "4421", "8009"] {
                if let Ok(a) = TransportAddr::new(t, traddr, svc, "", "") {
                    wanted.push(a);
                }
            }
        }
        let mut taken = 0;
        for c in &ctrls {
            for a in &wanted {
                if matches(c, a, &c.subsysnqn, HOST) {
                    taken += 1;
                    assert!(may_serve(c, a, None), "{c:?} at {a}");
                }
            }
            assert!(!may_be_entry(c) || c.subsysnqn == unique, "{c:?}");
        }
        assert!(
            taken > wanted.len(),
            "the grid has matches to check ({taken})"
        );
        let io = ctrl(Transport::Tcp, SUB, "traddr=10.0.0.1,trsvcid=4420");
        assert!(may_be_entry(&io));
    }
}
