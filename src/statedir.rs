//! The state directory (`--state-dir`, default /run/nvme-monitor), handled as security-sensitive.
//!
//! What is in it decides what we delete: the handoff state file names the discovery controllers a
//! later instance adopts (and so deletes at exit), the udev marker says whose mask link is in
//! /run/udev. Whoever can write there can make us delete a controller that is not ours, or, if we
//! followed a symlink, make root write our text into any file. So:
//!
//! - the directory is created 0700 when missing; it must be a directory, not a symlink to one, owned
//!   by our effective uid (root in production) and not writable by group or others, else it is
//!   refused with a message that says how to fix it;
//! - every file in it is reached through the directory's fd (`openat` and friends, never by path
//!   again) with `O_NOFOLLOW|O_CLOEXEC`; a symlink, FIFO, device, socket or directory where a
//!   regular file should be is refused, never followed, opened for writing, blocked on or removed;
//! - a file is replaced by a new temporary file (`O_EXCL`, after unlinking a leftover of that name),
//!   written, fsynced, `renameat` over the old name, then the directory fsynced, so a crash at any
//!   point leaves the old or the new complete file.
//!
//! Once the directory is known to be ours and closed to others, only root can change it between a
//! check here and the system call after it: that is why a check followed by a call is enough.
//!
//! The instance lock ([`lock`]) lives here too: `flock` on `<dir>/lock`, one daemon per directory.
//!
//! # References
//! - openat(2): `O_NOFOLLOW`, `O_EXCL`, `O_NONBLOCK`, `O_DIRECTORY`; fstatat(2), renameat(2),
//!   unlinkat(2), flock(2), fsync(2)

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::{Context, Error, Result};

/// Name of the instance lock file in the state directory.
pub const LOCK_NAME: &str = "lock";

/// A file larger than this is not ours (128 discovery controllers take about 50 KiB).
const MAX_FILE: usize = 1 << 20;

/// An open, checked state directory: files are reached through its fd only.
#[derive(Debug)]
pub struct StateDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a file type is called in a refusal.
fn kind(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

/// The refusal for a file we would open: a symlink is not followed, anything else not regular is
/// not opened (a FIFO would block us, a device would act on its open).
fn open_refusal(ft: FileType) -> String {
    match ft {
        FileType::Symlink => "is a symlink: refusing to follow it".into(),
        _ => format!("is {}, not a regular file: refusing it", kind(ft)),
    }
}

/// The refusal for a name we would replace or remove: we never delete what we did not make.
fn replace_refusal(ft: FileType) -> String {
    format!("is {}, not a regular file: leaving it alone", kind(ft))
}

fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// The directory at `path` checked: a real directory, ours, closed to group and others.
fn check_dir(path: &Path, st: &Stat) -> Result<()> {
    let what = || format!("use state directory {}", path.display());
    let ft = file_type(st);
    if ft != FileType::Directory {
        return Err(Error::invalid(what(), format!("it is {}", kind(ft))));
    }
    let euid = rustix::process::geteuid().as_raw();
    if st.st_uid != euid {
        return Err(Error::invalid(
            what(),
            format!(
                "it is owned by uid {}, not by us (uid {euid}); fix with chown {euid} {}",
                st.st_uid,
                path.display()
            ),
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::invalid(
            what(),
            format!(
                "it is writable by group or others (mode {mode:04o}); fix with chmod 0700 {}",
                path.display()
            ),
        ));
    }
    Ok(())
}

impl StateDir {
    /// Open the state directory at `path`, creating it (and its parents) when missing: for writers.
    pub fn create(path: &Path) -> Result<StateDir> {
        match Self::open(path)? {
            Some(d) => Ok(d),
            None => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .context(|| format!("create {}", parent.display()))?;
                }
                // 0700: nobody but us has a reason to look inside, let alone write.
                match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::os(format!("create {}", path.display()), e)),
                }
                Self::open(path)?
                    .ok_or_else(|| Error::os(format!("open {}", path.display()), Errno::NOENT))
            }
        }
    }

    /// Open the state directory at `path` if it exists (`None` when not): for readers, which have
    /// nothing to read in a directory that is not there and no reason to create it.
    pub fn open(path: &Path) -> Result<Option<StateDir>> {
        let what = || format!("use state directory {}", path.display());
        // lstat first only for a clear message; the checks that count are on the opened fd.
        match rustix::fs::lstat(path) {
            Ok(st) if file_type(&st) == FileType::Symlink => {
                return Err(Error::invalid(
                    what(),
                    "it is a symlink: refusing to follow it",
                ));
            }
            Ok(_) => {}
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(Error::os(what(), e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(Error::invalid(
                    what(),
                    "it is a symlink: refusing to follow it",
                ));
            }
            Err(Errno::NOTDIR) => return Err(Error::invalid(what(), "it is not a directory")),
            Err(e) => return Err(Error::os(what(), e)),
        };
        let st = rustix::fs::fstat(&fd).context(what)?;
        check_dir(path, &st)?;
        Ok(Some(StateDir {
            fd,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What is at `name`, not following a symlink; `None` when nothing.
    fn stat(&self, name: &str, what: &dyn Fn() -> String) -> Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::os(what(), e)),
        }
    }

    /// `openat` a regular file with `flags`, refusing anything else. `O_NOFOLLOW` makes a symlink
    /// fail (ELOOP) instead of being followed; `O_NONBLOCK` makes a FIFO's open return at once
    /// instead of waiting for a writer, so the fstat after it can refuse it. `None` when absent.
    fn open_regular(
        &self,
        name: &str,
        flags: OFlags,
        mode: u32,
        what: &dyn Fn() -> String,
    ) -> Result<Option<OwnedFd>> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(Error::invalid(what(), open_refusal(FileType::Symlink)));
            }
            Err(e) => return Err(Error::os(what(), e)),
        };
        let ft = file_type(&rustix::fs::fstat(&fd).context(what)?);
        if ft != FileType::RegularFile {
            return Err(Error::invalid(what(), open_refusal(ft)));
        }
        Ok(Some(fd))
    }

    /// The contents of the regular file `name`; `None` when there is none. A symlink, FIFO or
    /// anything else not regular is an error naming the path and what it is.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.file_path(name);
        let what = || format!("read {}", path.display());
        // Refuse before opening: opening a device node can act on it, even read-only.
        if let Some(st) = self.stat(name, &what)? {
            let ft = file_type(&st);
            if ft != FileType::RegularFile {
                return Err(Error::invalid(what(), open_refusal(ft)));
            }
        }
        let Some(fd) = self.open_regular(name, OFlags::RDONLY, 0, &what)? else {
            return Ok(None);
        };
        read_all(&fd, &what).map(Some)
    }

    /// Whether the regular file `name` exists; anything else at that name is an error.
    pub fn has_file(&self, name: &str) -> Result<bool> {
        let path = self.file_path(name);
        let what = || format!("check {}", path.display());
        match self.stat(name, &what)? {
            None => Ok(false),
            Some(st) if file_type(&st) == FileType::RegularFile => Ok(true),
            Some(st) => Err(Error::invalid(what(), open_refusal(file_type(&st)))),
        }
    }

    /// Atomically replace `name` with `bytes` (file mode `mode`): a new temporary file created with
    /// `O_EXCL`, fsynced, renamed over `name`, then the directory fsynced. Something other than a
    /// regular file at `name` is refused and left as it is.
    pub fn replace(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let path = self.file_path(name);
        let what = || format!("replace {}", path.display());
        if let Some(st) = self.stat(name, &what)? {
            let ft = file_type(&st);
            if ft != FileType::RegularFile {
                return Err(Error::invalid(what(), replace_refusal(ft)));
            }
        }
        let tmp = format!(".{name}.tmp");
        let tmp_path = self.file_path(&tmp);
        // A leftover from a crash, or whatever sits at the name: unlinking removes a symlink itself,
        // never its target, and O_EXCL below then refuses anything that appears again.
        match rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(Error::os(format!("remove {}", tmp_path.display()), e)),
        }
        let create = || format!("create {}", tmp_path.display());
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(&self.fd, tmp.as_str(), flags, Mode::from_raw_mode(mode))
            .context(create)?;
        let written = write_all(&fd, bytes)
            .context(|| format!("write {}", tmp_path.display()))
            .and_then(|()| {
                rustix::fs::fsync(&fd).context(|| format!("sync {}", tmp_path.display()))
            })
            .and_then(|()| {
                rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)
                    .context(|| format!("rename {} to {}", tmp_path.display(), path.display()))
            });
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
            return Err(e);
        }
        // The rename is durable only once the directory is (on a disk; /run is tmpfs, where it is cheap).
        rustix::fs::fsync(&self.fd).context(|| format!("sync {}", self.path.display()))
    }

    /// Remove the regular file `name`: `Ok(false)` when there was none. Anything else at that name
    /// is refused and left: we delete only what we could have made.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let path = self.file_path(name);
        let what = || format!("remove {}", path.display());
        match self.stat(name, &what)? {
            None => return Ok(false),
            Some(st) if file_type(&st) != FileType::RegularFile => {
                return Err(Error::invalid(what(), replace_refusal(file_type(&st))));
            }
            Some(_) => {}
        }
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::os(what(), e)),
        }
    }
}

fn read_all(fd: &OwnedFd, what: &dyn Fn() -> String) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_FILE {
                    return Err(Error::invalid(
                        what(),
                        format!("larger than {MAX_FILE} bytes: refusing it"),
                    ));
                }
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os(what(), e)),
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> rustix::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Proof that this process is the one nvme-monitor using a state directory.
///
/// Holds the `flock` on `<dir>/lock` for as long as it lives: keep it for the process lifetime.
/// The lock belongs to the open file description, so it goes when the process exits, however it
/// exits (SIGKILL included), and is not inherited by an exec'd child (`O_CLOEXEC`). The file itself
/// stays: removing it at exit would let a third instance lock a new file while a second one still
/// holds the old, unlinked one.
#[derive(Debug)]
pub struct InstanceLock {
    _fd: OwnedFd,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why [`lock`] did not give us the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Another process holds the lock. `pid` is what it wrote into the lock file (`None` if it has
    /// not yet, or the file does not hold a pid).
    Held { dir: PathBuf, pid: Option<u32> },
    /// The directory or the lock file is not safe to use (symlink, FIFO, wrong owner, writable by
    /// group or others): the message says what and how to fix it. A daemon should refuse to start.
    Unsafe(Error),
    /// A system call failed (e.g. EROFS: the directory cannot be created). Nothing can be written
    /// there either; whether to go on without the lock is the caller's decision.
    Io(Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { dir, pid } => {
                f.write_str("another nvme-monitor (")?;
                match pid {
                    Some(pid) => write!(f, "pid {pid}")?,
                    None => f.write_str("pid unknown")?,
                }
                write!(f, ") is running with state directory {}", dir.display())
            }
            LockError::Unsafe(e) | LockError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LockError {}

/// A refusal (no errno) is `Unsafe`, a failed system call `Io`.
fn lock_error(e: Error) -> LockError {
    match e.errno() {
        None => LockError::Unsafe(e),
        Some(_) => LockError::Io(e),
    }
}

/// Take the instance lock of the state directory `dir` (created 0700 if missing, checked as
/// [`StateDir::open`] does): `flock(LOCK_EX|LOCK_NB)` on `<dir>/lock`, then our pid written into it.
///
/// When another process holds it, [`LockError::Held`] carries that process's pid, read from the
/// file, so the caller can say e.g. "another nvme-monitor (pid 123) is running with state directory
/// /run/nvme-monitor: refusing to start" (its `Display` is that sentence without the last part).
/// A second open of the file, even in this process, conflicts: flock locks open file descriptions.
///
/// # References
/// - flock(2)
pub fn lock(dir: &Path) -> std::result::Result<InstanceLock, LockError> {
    let sd = StateDir::create(dir).map_err(lock_error)?;
    let path = sd.file_path(LOCK_NAME);
    let what = || format!("lock {}", path.display());
    if let Some(st) = sd.stat(LOCK_NAME, &what).map_err(lock_error)? {
        let ft = file_type(&st);
        if ft != FileType::RegularFile {
            return Err(LockError::Unsafe(Error::invalid(what(), open_refusal(ft))));
        }
    }
    let fd = sd
        .open_regular(LOCK_NAME, OFlags::RDWR | OFlags::CREATE, 0o600, &what)
        .map_err(lock_error)?
        .ok_or_else(|| LockError::Io(Error::os(what(), Errno::NOENT)))?;
    match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            return Err(LockError::Held {
                dir: dir.to_path_buf(),
                pid: read_pid(&fd),
            });
        }
        Err(e) => return Err(LockError::Io(Error::os(what(), e))),
    }
    let pid = format!("{}\n", std::process::id());
    if let Err(e) = rustix::fs::ftruncate(&fd, 0).and_then(|()| write_all(&fd, pid.as_bytes())) {
        // The lock is held all the same (a full /run must not let a second daemon in); a second
        // instance then only cannot name our pid.
        warn!(
            "unable to write our pid into {}: {e}: holding the lock without it",
            path.display()
        );
    }
    Ok(InstanceLock { _fd: fd, path })
}

/// The pid in a lock or ready file: decimal digits and a newline, nothing else.
pub fn parse_pid(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

fn read_pid(fd: &OwnedFd) -> Option<u32> {
    let mut buf = [0u8; 16];
    let n = rustix::io::pread(fd, &mut buf, 0).ok()?;
    parse_pid(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};

    /// A fresh directory 0700 under the temporary directory.
    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nvme-monitor-sd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn mkfifo(p: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    #[test]
    fn creates_missing_dir_0700_and_parents() {
        let base = temp_dir("create");
        let d = base.join("a/b");
        assert!(
            StateDir::open(&d).unwrap().is_none(),
            "readers do not create"
        );
        assert!(!d.exists());
        StateDir::create(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_world_and_group_writable_dirs() {
        let d = temp_dir("perm");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::create(&d).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "unable to use state directory {0}: it is writable by group or others (mode 0777); fix with chmod 0700 {0}",
                d.display()
            )
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = StateDir::open(&d).unwrap_err().to_string();
        assert!(e.contains("writable by group or others (mode 0770)"), "{e}");
        // The sticky bit (as on /tmp) does not make a world-writable directory ours.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(StateDir::open(&d).is_err());
        assert!(matches!(lock(&d), Err(LockError::Unsafe(_))));
        assert!(
            !d.join(LOCK_NAME).exists(),
            "nothing created in a refused dir"
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
        StateDir::open(&d).unwrap().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_a_dir_owned_by_someone_else() {
        let d = if rustix::process::geteuid().is_root() {
            let d = temp_dir("owner");
            std::os::unix::fs::chown(&d, Some(12345), None).unwrap();
            d
        } else {
            PathBuf::from("/") // owned by root, and we are not
        };
        let e = StateDir::open(&d).unwrap_err().to_string();
        assert!(e.contains("it is owned by uid"), "{e}");
        if d != Path::new("/") {
            std::fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn refuses_a_symlinked_dir_and_a_file() {
        let base = temp_dir("dirlink");
        let real = base.join("real");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&real)
            .unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for e in [
            StateDir::open(&link).unwrap_err(),
            StateDir::create(&link).unwrap_err(),
        ] {
            assert_eq!(
                e.to_string(),
                format!(
                    "unable to use state directory {}: it is a symlink: refusing to follow it",
                    link.display()
                )
            );
        }
        std::fs::write(base.join("file"), b"").unwrap();
        let e = StateDir::create(&base.join("file"))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("it is not a directory"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn read_refuses_symlink_and_fifo() {
        let d = temp_dir("read");
        let sd = StateDir::open(&d).unwrap().unwrap();
        assert_eq!(sd.read("x").unwrap(), None);
        std::fs::write(d.join("target"), b"secret").unwrap();
        std::os::unix::fs::symlink(d.join("target"), d.join("x")).unwrap();
        assert_eq!(
            sd.read("x").unwrap_err().to_string(),
            format!(
                "unable to read {}: is a symlink: refusing to follow it",
                d.join("x").display()
            )
        );
        mkfifo(&d.join("fifo"));
        assert_eq!(
            sd.read("fifo").unwrap_err().to_string(),
            format!(
                "unable to read {}: is a FIFO, not a regular file: refusing it",
                d.join("fifo").display()
            )
        );
        assert!(sd.has_file("fifo").is_err());
        assert!(sd.has_file("x").is_err());
        assert!(sd.has_file("target").unwrap());
        assert!(!sd.has_file("none").unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn opening_a_fifo_does_not_block() {
        // The open itself, past the stat check (a FIFO that appears between the two): O_NONBLOCK
        // returns at once with no writer. Without it this open waits forever; the channel turns that
        // into a failure instead of a hung test.
        let d = temp_dir("fifo-open");
        mkfifo(&d.join("f"));
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = d.clone();
        std::thread::spawn(move || {
            let sd = StateDir::open(&dir).unwrap().unwrap();
            let what = || "read f".to_string();
            let r = sd.open_regular("f", OFlags::RDONLY, 0, &what).map(|_| ());
            let _ = tx.send(r);
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("opening a FIFO blocked");
        assert!(r.unwrap_err().to_string().contains("is a FIFO"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_is_atomic_and_refuses_non_regular_targets() {
        let d = temp_dir("replace");
        let sd = StateDir::open(&d).unwrap().unwrap();
        sd.replace("s", b"one", 0o600).unwrap();
        sd.replace("s", b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(d.join("s")).unwrap(), b"two");
        assert_eq!(mode(&d.join("s")), 0o600);
        assert!(!d.join(".s.tmp").exists());
        // A symlink at the name: not written through, not replaced.
        std::fs::write(d.join("outside"), b"keep").unwrap();
        std::os::unix::fs::symlink(d.join("outside"), d.join("l")).unwrap();
        let e = sd.replace("l", b"evil", 0o600).unwrap_err().to_string();
        assert!(
            e.ends_with("is a symlink, not a regular file: leaving it alone"),
            "{e}"
        );
        assert_eq!(std::fs::read(d.join("outside")).unwrap(), b"keep");
        assert!(
            std::fs::symlink_metadata(d.join("l"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        mkfifo(&d.join("f"));
        assert!(
            sd.replace("f", b"x", 0o600)
                .unwrap_err()
                .to_string()
                .contains("a FIFO")
        );
        assert!(
            std::fs::symlink_metadata(d.join("f"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_survives_hostile_temp_names() {
        let d = temp_dir("tmpname");
        let sd = StateDir::open(&d).unwrap().unwrap();
        // A leftover temporary file from a crash, with someone else's mode.
        std::fs::write(d.join(".s.tmp"), b"leftover junk, longer than the new text").unwrap();
        std::fs::set_permissions(d.join(".s.tmp"), std::fs::Permissions::from_mode(0o666)).unwrap();
        sd.replace("s", b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(d.join("s")).unwrap(), b"new");
        assert_eq!(mode(&d.join("s")), 0o600);
        // The temporary name a symlink to a file elsewhere: never written through.
        let outside = temp_dir("tmpname-outside").join("victim");
        std::fs::write(&outside, b"victim").unwrap();
        std::os::unix::fs::symlink(&outside, d.join(".s.tmp")).unwrap();
        sd.replace("s", b"newer", 0o600).unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"victim");
        assert_eq!(std::fs::read(d.join("s")).unwrap(), b"newer");
        assert!(std::fs::symlink_metadata(d.join(".s.tmp")).is_err());
        // A FIFO there: removed, not opened.
        mkfifo(&d.join(".s.tmp"));
        sd.replace("s", b"newest", 0o600).unwrap();
        assert_eq!(std::fs::read(d.join("s")).unwrap(), b"newest");
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(outside.parent().unwrap()).unwrap();
    }

    #[test]
    fn remove_only_removes_regular_files() {
        let d = temp_dir("remove");
        let sd = StateDir::open(&d).unwrap().unwrap();
        assert!(!sd.remove("s").unwrap());
        sd.replace("s", b"x", 0o600).unwrap();
        assert!(sd.remove("s").unwrap());
        assert!(!d.join("s").exists());
        std::os::unix::fs::symlink("/dev/null", d.join("l")).unwrap();
        assert!(sd.remove("l").is_err());
        assert!(std::fs::symlink_metadata(d.join("l")).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_is_exclusive_and_names_the_holder() {
        let d = temp_dir("lock").join("state");
        let held = lock(&d).unwrap();
        assert_eq!(mode(&d), 0o700, "created by lock");
        assert_eq!(held.path(), d.join(LOCK_NAME));
        assert_eq!(
            std::fs::read_to_string(d.join(LOCK_NAME)).unwrap(),
            format!("{}\n", std::process::id())
        );
        // A second open file description conflicts, in this process as in another.
        let e = lock(&d).unwrap_err();
        assert_eq!(
            e,
            LockError::Held {
                dir: d.clone(),
                pid: Some(std::process::id())
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "another nvme-monitor (pid {}) is running with state directory {}",
                std::process::id(),
                d.display()
            )
        );
        drop(held);
        let again = lock(&d).unwrap();
        drop(again);
        std::fs::remove_dir_all(d.parent().unwrap()).unwrap();
    }

    #[test]
    fn lock_refuses_a_symlink_or_fifo_lock_file() {
        let d = temp_dir("lock-hostile");
        std::fs::write(d.join("victim"), b"victim").unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join(LOCK_NAME)).unwrap();
        match lock(&d) {
            Err(LockError::Unsafe(e)) => {
                assert!(
                    e.to_string()
                        .ends_with("is a symlink: refusing to follow it")
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(d.join("victim")).unwrap(), b"victim");
        std::fs::remove_file(d.join(LOCK_NAME)).unwrap();
        mkfifo(&d.join(LOCK_NAME));
        assert!(matches!(lock(&d), Err(LockError::Unsafe(_))));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pid_parsing_is_strict() {
        assert_eq!(parse_pid(b"123\n"), Some(123));
        assert_eq!(parse_pid(b"123"), Some(123));
        for bad in [
            &b""[..],
            b"\n",
            b"0\n",
            b"+1\n",
            b"-1\n",
            b" 1\n",
            b"1 \n",
            b"99999999999\n",
            b"4294967296",
            b"12\n\n",
        ] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }
}
