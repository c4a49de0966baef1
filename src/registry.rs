//! nvme-cli 3's ownership registry: /run/nvme/registry/nvmeN/{owner,seqnum}.
//!
//! Every cooperating orchestrator (nvme-cli, nvme-stas, nvme-discoverd, the initramfs) records the
//! fabrics controllers it created there, so that `nvme disconnect-all` leaves a boot path alone and
//! nobody reads the log of, reuses or deletes a discovery controller somebody else keeps. We record
//! every controller we create (discovery and I/O) under our owner name (`--owner`, default
//! `nvme-monitor`), and a controller another owner registered is not ours to use at all.
//!
//! An entry is built in a hidden temporary directory and renamed into place, so a reader sees it
//! whole or not at all; it is removed by renaming it to a hidden name first, then deleting it.
//! `seqnum` is /sys/kernel/uevent_seqnum read just before the connect write: any `remove` of the new
//! controller has a higher number, however soon it comes (read after the write, a controller that
//! went at once would keep its entry for ever). That is what the removal rule rests on: an entry
//! goes only when the device node is gone AND the remove event is newer than the stamp, because the instance number may already belong to a new controller whose
//! entry a late `remove` of the old one must not take away. Without udev (an initramfs, or a host
//! without nvme-cli 3's rule) nobody else cleans up, so we apply the same rule to our own entries.
//!
//! /run survives switch-root: the initramfs instance's entries carry over to the post-pivot
//! instance, which adopts those controllers under the same owner name.

use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};

/// Our owner name unless `--owner` says otherwise.
pub const DEFAULT_OWNER: &str = "nvme-monitor";
/// Under the run root (`/run`, or `--run-root`).
pub const REGISTRY_DIR: &str = "nvme/registry";
/// Longest owner name we read or write (ours is checked by the command line).
pub const OWNER_MAX: usize = 64;

/// What one registry entry says. Absent or unparsable fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub owner: Option<String>,
    pub seqnum: Option<u64>,
}

impl Entry {
    /// From the two files' contents (`None`: the file is absent).
    pub fn parse(owner: Option<&[u8]>, seqnum: Option<&[u8]>) -> Entry {
        let text = |b: &[u8]| -> Option<String> {
            let s = std::str::from_utf8(b).ok()?.trim();
            (!s.is_empty() && s.len() <= OWNER_MAX && !s.contains(['/', '\0'])).then(|| s.into())
        };
        Entry {
            owner: owner.and_then(text),
            seqnum: seqnum
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.trim().parse().ok()),
        }
    }
}

/// Who has claimed a controller, as far as we are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No entry, or an entry without an owner: unowned, usable by anyone (never deleted by us
    /// unless we made it).
    Unowned,
    /// Registered under our owner name.
    Ours,
    /// Registered by another orchestrator (its name): neither used, read nor deleted.
    Other(String),
}

/// The claim an entry makes, seen by the owner `us`.
pub fn claim(entry: &Entry, us: &str) -> Claim {
    match entry.owner.as_deref() {
        None => Claim::Unowned,
        Some(o) if o == us => Claim::Ours,
        Some(o) => Claim::Other(o.to_owned()),
    }
}

/// May our entry for a controller that got a `remove` event with `remove_seqnum` go? Only when its
/// device node is gone and the event is newer than the entry: an older event is about the controller
/// that had the number before (the entry describes its successor). An entry without a readable
/// stamp is kept: we cannot tell which controller it describes.
pub fn removable(entry: &Entry, remove_seqnum: u64, dev_node_exists: bool) -> bool {
    !dev_node_exists && entry.seqnum.is_some_and(|stamp| remove_seqnum > stamp)
}

/// The registry on this host, as one owner sees it.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
    owner: String,
    seqnum_file: PathBuf,
    dev_root: PathBuf,
    /// `--dry-run`: read the registry, never write it.
    read_only: bool,
    /// Ours, for the names of temporary entries (read once: it is a syscall per call).
    pid: u32,
}

impl Registry {
    pub fn new(
        run_root: &Path,
        sys_root: &Path,
        dev_root: &Path,
        owner: &str,
        read_only: bool,
    ) -> Registry {
        Registry {
            dir: run_root.join(REGISTRY_DIR),
            owner: owner.to_owned(),
            seqnum_file: sys_root.join("kernel/uevent_seqnum"),
            dev_root: dev_root.to_path_buf(),
            read_only,
            pid: std::process::id(),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for `nvme{instance}` (empty when there is none or it cannot be read).
    pub fn entry(&self, instance: u32) -> Entry {
        let dir = self.dir.join(format!("nvme{instance}"));
        let read = |f: &str| read_small(&dir.join(f));
        Entry::parse(read("owner").as_deref(), read("seqnum").as_deref())
    }

    /// Only the owner file is read: a claim does not depend on the stamp, and a scan asks this
    /// of every registered controller.
    pub fn claim(&self, instance: u32) -> Claim {
        let owner = read_small(&self.dir.join(format!("nvme{instance}/owner")));
        claim(&Entry::parse(owner.as_deref(), None), &self.owner)
    }

    /// The instances that have an entry (one directory read: a scan of many controllers then
    /// reads only the entries that exist).
    pub fn instances(&self) -> Vec<u32> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str().and_then(crate::sysfs::instance_of))
            .collect()
    }

    /// The kernel's uevent sequence number now.
    pub fn uevent_seqnum(&self) -> Result<u64> {
        let what = || format!("read {}", self.seqnum_file.display());
        let bytes =
            read_page(&self.seqnum_file, OFlags::empty()).map_err(|e| Error::os(what(), e))?;
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::invalid(what(), "not a number"))
    }

    /// Record `nvme{instance}`, which we just created. Whatever the registry held under that name
    /// describes a controller that is gone (the kernel hands out only free numbers), so it is
    /// replaced. A failure is returned for the caller to log: the controller is up regardless.
    pub fn register(&self, instance: u32, seqnum: u64) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let name = format!("nvme{instance}");
        let what = || format!("register {name} in {}", self.dir.display());
        // Open first: the directory is there after the first connect, and create_dir_all would
        // cost a failing mkdir and a stat on every one.
        let top = match open_dir(&self.dir) {
            Err(Errno::NOENT) => {
                std::fs::create_dir_all(&self.dir).context(what)?;
                open_dir(&self.dir)
            }
            r => r,
        }
        .context(what)?;
        let tmp = format!(".{name}.{}.new", self.pid);
        let mode = Mode::from_raw_mode(0o755);
        // A leftover of ours (a pid reused after a crash mid-register) goes only if it is there.
        match rustix::fs::mkdirat(&top, tmp.as_str(), mode) {
            Err(Errno::EXIST) => {
                remove_entry_dir(&top, &tmp);
                rustix::fs::mkdirat(&top, tmp.as_str(), mode)
            }
            r => r,
        }
        .context(what)?;
        let fill = || -> rustix::io::Result<()> {
            let d = rustix::fs::openat(
                &top,
                tmp.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            // Explicit modes: the umask of whoever started us must not decide what others can read.
            rustix::fs::fchmod(&d, Mode::from_raw_mode(0o755))?;
            write_file(&d, "owner", format!("{}\n", self.owner).as_bytes())?;
            write_file(&d, "seqnum", format!("{seqnum}\n").as_bytes())
        };
        if let Err(e) = fill() {
            remove_entry_dir(&top, &tmp);
            return Err(Error::os(what(), e));
        }
        for _ in 0..2 {
            match rustix::fs::renameat(&top, tmp.as_str(), &top, name.as_str()) {
                Ok(()) => return Ok(()),
                Err(Errno::NOTEMPTY | Errno::EXIST | Errno::ISDIR | Errno::NOTDIR) => {
                    let old = self.entry(instance);
                    debug!(
                        "{name}: replacing a stale registry entry (owner {}, seqnum {})",
                        old.owner.as_deref().unwrap_or("none"),
                        old.seqnum.map_or("none".into(), |s| s.to_string())
                    );
                    self.discard(&top, &name);
                }
                Err(e) => {
                    remove_entry_dir(&top, &tmp);
                    return Err(Error::os(what(), e));
                }
            }
        }
        remove_entry_dir(&top, &tmp);
        Err(Error::invalid(
            what(),
            "the old entry could not be moved away",
        ))
    }

    /// Register a controller we adopted (from the state file) if nobody has: an instance before us
    /// may have run without the registry. Its stamp is now, after its `add`.
    pub fn register_adopted(&self, instance: u32) -> Result<()> {
        if self.read_only || self.entry(instance).owner.is_some() {
            return Ok(());
        }
        let seqnum = self.uevent_seqnum()?;
        self.register(instance, seqnum)
    }

    /// A `remove` event with `seqnum` (or, when we deleted the controller ourselves, the current
    /// sequence number) for `nvme{instance}`: drop our entry if [`removable`] says it describes
    /// the controller that went. Another owner's entry is theirs (or their udev rule's) to remove.
    /// `Ok(true)` when an entry was removed.
    pub fn forget(&self, instance: u32, seqnum: Option<u64>) -> Result<bool> {
        if self.read_only {
            return Ok(false);
        }
        let entry = self.entry(instance);
        if claim(&entry, &self.owner) != Claim::Ours {
            return Ok(false);
        }
        let seqnum = match seqnum {
            Some(s) => s,
            None => self.uevent_seqnum()?,
        };
        let node = self.dev_root.join(format!("nvme{instance}"));
        let node_exists = std::fs::symlink_metadata(&node).is_ok();
        if !removable(&entry, seqnum, node_exists) {
            debug!(
                "nvme{instance}: registry entry kept (remove seqnum {seqnum}, stamp {:?}, {} {})",
                entry.seqnum,
                node.display(),
                if node_exists { "exists" } else { "is gone" }
            );
            return Ok(false);
        }
        let what = || format!("remove nvme{instance} from {}", self.dir.display());
        let top = open_dir(&self.dir).context(what)?;
        self.discard(&top, &format!("nvme{instance}"));
        Ok(true)
    }

    /// Our entries whose controller no longer exists (the daemon was not running when it went):
    /// `live` are the instances sysfs shows. Returns how many were removed.
    pub fn sweep(&self, live: &[u32]) -> usize {
        if self.read_only {
            return 0;
        }
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        // Read once: every entry here was stamped before this read or is kept (a stamp above it
        // is a controller registered since, whose name sysfs did not list).
        let now = match self.uevent_seqnum() {
            Ok(n) => n,
            Err(e) => {
                warn!("{e}: registry entries of gone controllers kept");
                return 0;
            }
        };
        let mut removed = 0;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(instance) = name.to_str().and_then(crate::sysfs::instance_of) else {
                continue;
            };
            if live.contains(&instance) {
                continue;
            }
            match self.forget(instance, Some(now)) {
                Ok(true) => {
                    debug!("nvme{instance}: removed our registry entry (the controller is gone)");
                    removed += 1;
                }
                Ok(false) => {}
                Err(e) => warn!("{e}"),
            }
        }
        removed
    }

    /// Rename `name` to a hidden sibling, then delete it: readers never see half an entry.
    fn discard(&self, top: &rustix::fd::OwnedFd, name: &str) {
        let hidden = format!(".{name}.{}.old", self.pid);
        remove_entry_dir(top, &hidden);
        match rustix::fs::renameat(top, name, top, hidden.as_str()) {
            Ok(()) => remove_entry_dir(top, &hidden),
            Err(Errno::NOENT) => {}
            Err(e) => warn!(
                "unable to move {} aside: {e}",
                self.dir.join(name).display()
            ),
        }
    }
}

fn open_dir(path: &Path) -> rustix::io::Result<rustix::fd::OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn write_file(dir: &rustix::fd::OwnedFd, name: &str, bytes: &[u8]) -> rustix::io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o644))?;
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::write(&fd, &bytes[done..]) {
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Delete an entry directory (its regular files, then itself), never following a symlink; an
/// entry holds only small files, so anything else in it is left and the rmdir fails quietly.
fn remove_entry_dir(top: &rustix::fd::OwnedFd, name: &str) {
    let Ok(d) = rustix::fs::openat(
        top,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        // Not a directory (or gone): a plain file or symlink of that name goes as it is.
        let _ = rustix::fs::unlinkat(top, name, AtFlags::empty());
        return;
    };
    if let Ok(mut it) = rustix::fs::Dir::read_from(&d) {
        while let Some(Ok(e)) = it.next() {
            let n = e.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            let _ = rustix::fs::unlinkat(&d, e.file_name(), AtFlags::empty());
        }
    }
    let _ = rustix::fs::unlinkat(top, name, AtFlags::REMOVEDIR);
}

/// A registry file's contents, at most a page; `None` when absent, unreadable or not a regular file.
fn read_small(path: &Path) -> Option<Vec<u8>> {
    read_page(path, OFlags::NOFOLLOW).ok()
}

/// A small regular file (at most a page) in open, fstat, read and close: every scan of the
/// controllers reads the owner file of each registered controller, and each connect the seqnum.
/// Never follows a symlink when `flags` says NOFOLLOW; O_NONBLOCK keeps a FIFO from blocking the
/// open and O_NOCTTY a tty from becoming ours, and fstat then refuses anything not regular. The
/// size fstat gives is not used: sysfs says PAGE_SIZE (64 KiB on some arm64 and ppc64le
/// kernels) whatever it renders, and a file written in place may grow after the fstat.
fn read_page(path: &Path, flags: OFlags) -> rustix::io::Result<Vec<u8>> {
    const PAGE: usize = 4096;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY | flags,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Errno::INVAL);
    }
    // One byte more than a page tells a page from a longer file.
    let mut buf = [0u8; PAGE + 1];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            // sysfs renders an attribute whole and hands it out in the first read; a regular file
            // ends at a short read unless written meanwhile, which the next read would show: only
            // sysfs (size PAGE_SIZE or more) is trusted to end there.
            Ok(n) if n < buf.len() - len && st.st_size as u64 >= PAGE as u64 => {
                len += n;
                break;
            }
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    if len > PAGE {
        return Err(Errno::FBIG);
    }
    Ok(buf[..len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields_are_read_tolerantly() {
        let e = Entry::parse(Some(b"stas\n"), Some(b" 1234\n"));
        assert_eq!(e.owner.as_deref(), Some("stas"));
        assert_eq!(e.seqnum, Some(1234));
        let e = Entry::parse(Some(b"\n"), Some(b"12x"));
        assert_eq!(e, Entry::default());
        assert_eq!(Entry::parse(Some(&[0xff, 0xfe]), None).owner, None);
        assert_eq!(Entry::parse(Some(b"a/b"), None).owner, None);
    }

    #[test]
    fn claims() {
        let e = |o: Option<&str>| Entry {
            owner: o.map(str::to_owned),
            seqnum: Some(1),
        };
        assert_eq!(claim(&e(None), "nvme-monitor"), Claim::Unowned);
        assert_eq!(claim(&e(Some("nvme-monitor")), "nvme-monitor"), Claim::Ours);
        assert_eq!(
            claim(&e(Some("stas")), "nvme-monitor"),
            Claim::Other("stas".into())
        );
    }

    #[test]
    fn removal_needs_both_parts() {
        let e = Entry {
            owner: Some("nvme-monitor".into()),
            seqnum: Some(100),
        };
        assert!(removable(&e, 101, false));
        // A late remove of the number's previous controller: the entry is its successor's.
        assert!(!removable(&e, 99, false));
        assert!(!removable(&e, 100, false));
        // The node is still there: the number is in use again.
        assert!(!removable(&e, 101, true));
        let unstamped = Entry {
            seqnum: None,
            ..e.clone()
        };
        assert!(!removable(&unstamped, u64::MAX, false));
    }

    struct Host {
        root: PathBuf,
        reg: Registry,
    }

    fn host(tag: &str) -> Host {
        let root = std::env::temp_dir().join(format!("nm-registry-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sys/kernel")).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(root.join("sys/kernel/uevent_seqnum"), "500\n").unwrap();
        let reg = Registry::new(
            &root.join("run"),
            &root.join("sys"),
            &root.join("dev"),
            "nvme-monitor",
            false,
        );
        Host { root, reg }
    }

    impl Host {
        fn seqnum(&self, n: u64) {
            std::fs::write(self.root.join("sys/kernel/uevent_seqnum"), format!("{n}\n")).unwrap();
        }
        fn node(&self, instance: u32, present: bool) {
            let p = self.root.join(format!("dev/nvme{instance}"));
            if present {
                std::fs::write(p, "").unwrap();
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(self.reg.dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn register_writes_owner_and_stamp_with_fixed_modes() {
        use std::os::unix::fs::PermissionsExt;
        let h = host("write");
        h.reg.register(3, 500).unwrap();
        let d = h.reg.dir().join("nvme3");
        assert_eq!(
            std::fs::read_to_string(d.join("owner")).unwrap(),
            "nvme-monitor\n"
        );
        assert_eq!(std::fs::read_to_string(d.join("seqnum")).unwrap(), "500\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o755);
        assert_eq!(mode(&d.join("owner")), 0o644);
        assert_eq!(h.names(), ["nvme3"], "no temporary left behind");
        assert_eq!(h.reg.claim(3), Claim::Ours);
    }

    #[test]
    fn a_stale_entry_under_our_new_number_is_replaced() {
        let h = host("stale");
        let d = h.reg.dir().join("nvme2");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("owner"), "stas\n").unwrap();
        std::fs::write(d.join("seqnum"), "10\n").unwrap();
        assert_eq!(h.reg.claim(2), Claim::Other("stas".into()));
        h.reg.register(2, 500).unwrap();
        assert_eq!(h.reg.entry(2).owner.as_deref(), Some("nvme-monitor"));
        assert_eq!(h.reg.entry(2).seqnum, Some(500));
        assert_eq!(h.names(), ["nvme2"]);
    }

    #[test]
    fn forget_follows_the_two_part_rule() {
        let h = host("forget");
        h.node(1, true);
        h.reg.register(1, 500).unwrap();
        // A late remove of the previous nvme1 (older seqnum), node present: kept.
        assert!(!h.reg.forget(1, Some(450)).unwrap());
        // Newer remove, but the node is back (the number reused): kept.
        assert!(!h.reg.forget(1, Some(501)).unwrap());
        h.node(1, false);
        assert!(!h.reg.forget(1, Some(499)).unwrap(), "stale event");
        assert!(h.reg.forget(1, Some(501)).unwrap());
        assert!(h.names().is_empty());
        assert_eq!(h.reg.claim(1), Claim::Unowned);
    }

    #[test]
    fn another_owners_entry_is_never_removed() {
        let h = host("other");
        let d = h.reg.dir().join("nvme4");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("owner"), "discoverd\n").unwrap();
        std::fs::write(d.join("seqnum"), "10\n").unwrap();
        assert!(!h.reg.forget(4, Some(1000)).unwrap());
        assert_eq!(h.reg.sweep(&[]), 0);
        assert_eq!(h.names(), ["nvme4"]);
    }

    #[test]
    fn sweep_removes_only_our_dead_entries() {
        let h = host("sweep");
        h.reg.register(0, 500).unwrap();
        h.reg.register(5, 500).unwrap();
        // Stamped after the sweep's one seqnum read (made since the scan): kept.
        h.reg.register(6, 950).unwrap();
        h.seqnum(900);
        assert_eq!(h.reg.sweep(&[0]), 1);
        assert_eq!(h.names(), ["nvme0", "nvme6"]);
        // No seqnum to compare with: nothing removed.
        std::fs::remove_file(h.root.join("sys/kernel/uevent_seqnum")).unwrap();
        assert_eq!(h.reg.sweep(&[0]), 0);
        assert_eq!(h.names(), ["nvme0", "nvme6"]);
    }

    #[test]
    fn read_only_never_writes() {
        let h = host("ro");
        let reg = Registry::new(
            &h.root.join("run"),
            &h.root.join("sys"),
            &h.root.join("dev"),
            "nvme-monitor",
            true,
        );
        reg.register(1, 500).unwrap();
        assert!(!reg.dir().exists());
    }

    #[test]
    fn a_symlinked_entry_file_is_not_read() {
        let h = host("symlink");
        let d = h.reg.dir().join("nvme6");
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("owner")).unwrap();
        assert_eq!(h.reg.claim(6), Claim::Unowned);
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let h = host("read-page");
        let d = h.reg.dir().join("nvme7");
        std::fs::create_dir_all(&d).unwrap();
        let read = |name: &str| read_small(&d.join(name));
        std::fs::write(d.join("owner"), "nvme-monitor\n").unwrap();
        assert_eq!(read("owner").as_deref(), Some(&b"nvme-monitor\n"[..]));
        std::fs::write(d.join("empty"), "").unwrap();
        assert_eq!(read("empty").as_deref(), Some(&b""[..]));
        let page = vec![b'7'; 4096];
        std::fs::write(d.join("page"), &page).unwrap();
        assert_eq!(read("page"), Some(page));
        std::fs::write(d.join("big"), vec![b'x'; 4097]).unwrap();
        assert_eq!(read("big"), None, "more than a page is not a registry file");
        let f = std::fs::File::create(d.join("sparse")).unwrap();
        f.set_len(65536).unwrap();
        drop(f);
        assert_eq!(
            read("sparse"),
            None,
            "65,536 bytes (of zeros) are more than a page"
        );
        assert_eq!(read("absent"), None);
        assert_eq!(read("."), None, "a directory");
        // A FIFO would block a plain open (and a read) for ever: refused, at once.
        let fifo =
            std::ffi::CString::new(d.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.as_c_str(),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert_eq!(read("fifo"), None);
        h.seqnum(501);
        assert_eq!(h.reg.uevent_seqnum().unwrap(), 501);
    }
}
