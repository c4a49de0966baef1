//! Readiness: `READY=1` to the service manager, and a `ready` file an initramfs script can wait on.
//!
//! The sd_notify protocol is one datagram on the AF_UNIX socket named by `$NOTIFY_SOCKET` (a path, or
//! an abstract name written with a leading `@`); no libsystemd needed.
//!
//! # References
//! - sd_notify(3)

use std::path::Path;

use crate::error::{Context, Error, Result};

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

/// Create `<state_dir>/ready` (what an initramfs script without systemd waits for).
pub fn write_ready_file(state_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(state_dir).context(|| format!("create {}", state_dir.display()))?;
    let path = state_dir.join("ready");
    std::fs::write(&path, format!("{}\n", std::process::id()))
        .context(|| format!("create {}", path.display()))
}

/// Remove the ready file at exit, so a later waiter does not see a stale one.
pub fn remove_ready_file(state_dir: &Path) {
    let _ = std::fs::remove_file(state_dir.join("ready"));
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

    #[test]
    fn ready_file() {
        let dir = std::env::temp_dir().join(format!("nvme-monitor-ready-{}", std::process::id()));
        write_ready_file(&dir).unwrap();
        assert!(dir.join("ready").exists());
        remove_ready_file(&dir);
        assert!(!dir.join("ready").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
