//! Readiness: `READY=1` to the service manager, and a `ready` file an initramfs script can wait on.
//!
//! The sd_notify protocol is one datagram on the AF_UNIX socket named by `$NOTIFY_SOCKET` (a path, or
//! an abstract name written with a leading `@`); no libsystemd needed.
//!
//! # References
//! - sd_notify(3)

use std::path::Path;

use crate::error::{Context, Error, Result};
use crate::statedir::{StateDir, parse_pid};

/// Where `$NOTIFY_SOCKET` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAddr {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

/// Parse `$NOTIFY_SOCKET`; `None` for an empty or unsupported value (e.g. `vsock:`).
pub fn parse_notify_socket(value: &str) -> Option<NotifyAddr> {
    if let Some(name) = value.strip_prefix('@') {
        return Some(NotifyAddr::Abstract(name.as_bytes().to_vec()));
    }
    if value.starts_with('/') {
        return Some(NotifyAddr::Path(value.into()));
    }
    None
}

/// Send `msg` (e.g. `READY=1`) to the service manager, if one asked for it.
pub fn sd_notify(msg: &str) -> Result<bool> {
    let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let value = value.to_string_lossy();
    let addr = parse_notify_socket(&value).ok_or_else(|| {
        Error::invalid(
            "notify the service manager",
            format!("unsupported NOTIFY_SOCKET '{value}'"),
        )
    })?;
    send(&addr, msg)?;
    Ok(true)
}

fn send(addr: &NotifyAddr, msg: &str) -> Result<()> {
    use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};
    let what = || format!("send {msg} to the service manager");
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .context(what)?;
    let sa = match addr {
        NotifyAddr::Path(p) => SocketAddrUnix::new(p.as_path()),
        NotifyAddr::Abstract(name) => SocketAddrUnix::new_abstract_name(name),
    }
    .context(what)?;
    rustix::net::sendto(&fd, msg.as_bytes(), SendFlags::NOSIGNAL, &sa).context(what)?;
    Ok(())
}

/// Name of the ready file in the state directory.
pub const READY_NAME: &str = "ready";

/// Create `<state_dir>/ready` holding our pid (what an initramfs script without systemd waits for).
///
/// Written as every file in the state directory is (see [`crate::statedir`]): atomically, so a
/// waiter never reads half a pid, and never through a symlink planted at that name.
pub fn write_ready_file(state_dir: &Path) -> Result<()> {
    let pid = format!("{}\n", std::process::id());
    // 0644: a readiness flag, not a secret; a script that only tests for it may run unprivileged.
    StateDir::create(state_dir)?.replace(READY_NAME, pid.as_bytes(), 0o644)
}

/// Remove the ready file at exit, so a later waiter does not see a stale one: only when it is ours
/// (holds our pid), so that `--once` beside a daemon does not take the daemon's away.
pub fn remove_ready_file(state_dir: &Path) {
    let sd = match StateDir::open(state_dir) {
        Ok(Some(sd)) => sd,
        Ok(None) => return,
        Err(e) => return warn!("{e}"),
    };
    let ours = match sd.read(READY_NAME) {
        Ok(Some(bytes)) => parse_pid(&bytes) == Some(std::process::id()),
        Ok(None) => false,
        Err(e) => return warn!("{e}"),
    };
    if ours {
        if let Err(e) = sd.remove(READY_NAME) {
            warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_forms() {
        assert_eq!(
            parse_notify_socket("/run/systemd/notify"),
            Some(NotifyAddr::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            parse_notify_socket("@abc"),
            Some(NotifyAddr::Abstract(b"abc".to_vec()))
        );
        assert_eq!(parse_notify_socket("vsock:2:1"), None);
        assert_eq!(parse_notify_socket(""), None);
    }

    #[test]
    fn ready_datagram_arrives() {
        use rustix::net::{AddressFamily, RecvFlags, SocketAddrUnix, SocketType};
        let path = std::env::temp_dir().join(format!("nvme-monitor-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = rustix::net::socket(AddressFamily::UNIX, SocketType::DGRAM, None).unwrap();
        rustix::net::bind(&rx, &SocketAddrUnix::new(path.as_path()).unwrap()).unwrap();
        send(&NotifyAddr::Path(path.clone()), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = rustix::net::recv(&rx, &mut buf, RecvFlags::empty()).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_file(&path).unwrap();
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nvme-monitor-ready-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn ready_file() {
        let dir = temp_dir("own");
        write_ready_file(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("ready")).unwrap(),
            format!("{}\n", std::process::id())
        );
        remove_ready_file(&dir);
        assert!(!dir.join("ready").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_instances_ready_file_stays() {
        // --once beside a running daemon: the daemon's ready file is not ours to remove.
        let dir = temp_dir("other");
        write_ready_file(&dir).unwrap();
        std::fs::write(dir.join("ready"), "1\n").unwrap();
        remove_ready_file(&dir);
        assert_eq!(std::fs::read(dir.join("ready")).unwrap(), b"1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ready_file_symlink_is_not_written_through() {
        let dir = temp_dir("link");
        write_ready_file(&dir).unwrap();
        std::fs::remove_file(dir.join("ready")).unwrap();
        std::fs::write(dir.join("victim"), b"victim").unwrap();
        std::os::unix::fs::symlink(dir.join("victim"), dir.join("ready")).unwrap();
        let e = write_ready_file(&dir).unwrap_err().to_string();
        assert!(e.contains("is a symlink, not a regular file"), "{e}");
        remove_ready_file(&dir);
        assert_eq!(std::fs::read(dir.join("victim")).unwrap(), b"victim");
        assert!(std::fs::symlink_metadata(dir.join("ready")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
