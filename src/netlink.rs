//! The kernel uevent socket: NETLINK_KOBJECT_UEVENT, multicast group 1, kernel senders only.
//!
//! Any process may send to the uevent group, so a message whose sender port id is not 0 (the
//! kernel) is dropped, as udev and mdevd do. The socket is non-blocking and polled by the daemon; a
//! large receive buffer lets uevents queue while a synchronous discovery runs, and ENOBUFS (the buffer
//! overflowed anyway) is reported so the caller can rescan instead of trusting an incomplete picture.
//!
//! # References
//! - netlink(7) (`nl_pid` 0 is the kernel, ENOBUFS on overrun, `MSG_TRUNC`)
//! - socket(7) (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN, `SO_RCVBUF` is capped by net.core.rmem_max)
//! - lib/kobject_uevent.c (uevents are broadcast to group 1 by the kernel socket, port id 0)

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType, sockopt};

use crate::error::{Context, Error, Result};

/// The multicast group the kernel sends raw uevents to (udev re-broadcasts on group 2).
pub const KERNEL_GROUP: u32 = 1;

/// Enough for any uevent: the kernel's environment buffer is 2 KiB plus the header.
pub const RECV_BUFFER_SIZE: usize = 8192;

/// Why a received datagram was not handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Sent by a process, not the kernel: anyone can write to the uevent group.
    NotKernel { pid: u32 },
    /// Longer than the buffer (`len` is the full datagram length); a cut message must not be parsed.
    Truncated { len: usize },
    /// The kernel gave no netlink source address, so the sender cannot be checked.
    NoSender,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::NotKernel { pid } => write!(f, "sender port id {pid} is not the kernel"),
            DropReason::Truncated { len } => write!(f, "message of {len} bytes was truncated"),
            DropReason::NoSender => f.write_str("no netlink sender address"),
        }
    }
}

/// The outcome of one non-blocking receive.
#[derive(Debug)]
pub enum RecvResult<'b> {
    /// A whole datagram from an accepted sender, borrowed from the caller's buffer.
    Message(&'b [u8]),
    Dropped(DropReason),
    /// Nothing queued.
    WouldBlock,
    /// ENOBUFS: the receive buffer overflowed and uevents were lost.
    Overflow,
    Err(Error),
}

/// Whether a datagram from netlink port id `pid` is accepted.
///
/// Port id 0 is the kernel; a process can never bind it. `allow_userspace` exists only so that tests
/// can inject uevents without being the kernel.
pub fn accept_sender(pid: u32, allow_userspace: bool) -> bool {
    pid == 0 || allow_userspace
}

/// A NETLINK_KOBJECT_UEVENT socket bound to [`KERNEL_GROUP`].
#[derive(Debug)]
pub struct UeventSocket {
    fd: OwnedFd,
    /// Accept datagrams from processes too (test seam; default false).
    pub allow_userspace_senders: bool,
}

impl UeventSocket {
    /// Open and bind the socket with a receive buffer of `rcvbuf` bytes (0 keeps the default).
    pub fn open(rcvbuf: usize) -> Result<UeventSocket> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(netlink::KOBJECT_UEVENT),
        )
        .context(|| "open uevent netlink socket".into())?;
        if rcvbuf > 0 {
            set_recv_buffer(&fd, rcvbuf)?;
        }
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, KERNEL_GROUP))
            .context(|| format!("bind uevent netlink socket to group {KERNEL_GROUP}"))?;
        Ok(UeventSocket {
            fd,
            allow_userspace_senders: false,
        })
    }

    /// Receive one datagram into `buf` (use [`RECV_BUFFER_SIZE`]); never blocks.
    pub fn recv<'b>(&self, buf: &'b mut [u8]) -> RecvResult<'b> {
        let (len, from) = loop {
            // TRUNC makes the kernel report the full length, so a cut message is recognisable.
            match rustix::net::recvfrom(&self.fd, &mut *buf, RecvFlags::TRUNC) {
                Ok((_, len, from)) => break (len, from),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return RecvResult::WouldBlock,
                Err(Errno::NOBUFS) => return RecvResult::Overflow,
                Err(e) => return RecvResult::Err(Error::os("receive uevent", e)),
            }
        };
        let Some(sender) = from.and_then(|a| SocketAddrNetlink::try_from(a).ok()) else {
            return RecvResult::Dropped(DropReason::NoSender);
        };
        if !accept_sender(sender.pid(), self.allow_userspace_senders) {
            return RecvResult::Dropped(DropReason::NotKernel { pid: sender.pid() });
        }
        let buf: &'b [u8] = buf;
        match buf.get(..len) {
            Some(message) => RecvResult::Message(message),
            None => RecvResult::Dropped(DropReason::Truncated { len }),
        }
    }
}

impl AsFd for UeventSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// SO_RCVBUFFORCE goes past net.core.rmem_max but needs CAP_NET_ADMIN; without it, take what
/// SO_RCVBUF gives rather than fail, since a smaller buffer only makes an overflow (and a rescan) likelier.
fn set_recv_buffer(fd: &OwnedFd, size: usize) -> Result<()> {
    match sockopt::set_socket_recv_buffer_size_force(fd, size) {
        Ok(()) => Ok(()),
        Err(Errno::PERM) => {
            sockopt::set_socket_recv_buffer_size(fd, size)
                .context(|| format!("set uevent socket receive buffer to {size} bytes"))?;
            let got = sockopt::socket_recv_buffer_size(fd).unwrap_or(0);
            debug!(
                "uevent socket: no CAP_NET_ADMIN for SO_RCVBUFFORCE, receive buffer is {got} bytes"
            );
            Ok(())
        }
        Err(e) => Err(Error::os(
            format!("force uevent socket receive buffer to {size} bytes"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::SendFlags;

    #[test]
    fn only_the_kernel_unless_allowed() {
        assert!(accept_sender(0, false));
        assert!(!accept_sender(1234, false));
        assert!(accept_sender(1234, true));
        assert!(accept_sender(0, true));
    }

    #[test]
    fn drop_reasons_read_well() {
        assert_eq!(
            DropReason::NotKernel { pid: 42 }.to_string(),
            "sender port id 42 is not the kernel"
        );
        assert_eq!(
            DropReason::Truncated { len: 9000 }.to_string(),
            "message of 9000 bytes was truncated"
        );
    }

    /// Read until `want` matches, skipping real uevents the host and the other tests (which run in
    /// parallel and multicast to the same group) may queue meanwhile.
    fn recv_until(sock: &UeventSocket, buf: &mut [u8], want: impl Fn(&RecvResult<'_>) -> bool) {
        for _ in 0..256 {
            let r = sock.recv(buf);
            if want(&r) {
                return;
            }
            match r {
                RecvResult::WouldBlock => panic!("queue drained without the expected result"),
                RecvResult::Err(e) => panic!("{e}"),
                _ => {}
            }
        }
        panic!("expected result not seen in 256 reads");
    }

    /// A userspace socket of the same protocol; its autobound port id identifies what it sent.
    struct Sender {
        fd: OwnedFd,
    }

    impl Sender {
        fn new() -> Sender {
            let fd = rustix::net::socket_with(
                AddressFamily::NETLINK,
                SocketType::DGRAM,
                SocketFlags::CLOEXEC,
                Some(netlink::KOBJECT_UEVENT),
            )
            .unwrap();
            rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0)).unwrap();
            Sender { fd }
        }

        fn pid(&self) -> u32 {
            let addr = rustix::net::getsockname(&self.fd).unwrap();
            SocketAddrNetlink::try_from(addr).unwrap().pid()
        }

        /// Multicast to the uevent group; false (with a note) when this process may not.
        fn send(&self, payload: &[u8]) -> bool {
            let to = SocketAddrNetlink::new(0, KERNEL_GROUP);
            match rustix::net::sendto(&self.fd, payload, SendFlags::empty(), &to) {
                Ok(_) => true,
                Err(Errno::PERM) | Err(Errno::ACCESS) => {
                    eprintln!("note: no CAP_NET_ADMIN to send to the uevent group, part skipped");
                    false
                }
                Err(e) => panic!("sendto: {e}"),
            }
        }
    }

    fn unique_payload() -> Vec<u8> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let header = format!("change@/nvme-monitor-test/{}/{nanos}", std::process::id());
        let mut payload = header.into_bytes();
        payload.extend_from_slice(b"\0SUBSYSTEM=nvme-monitor-test\0");
        payload
    }

    #[test]
    fn real_socket_is_quiet_and_drops_userspace_senders() {
        let kernel_only = UeventSocket::open(1 << 20).unwrap();
        let mut tap = UeventSocket::open(0).unwrap();
        tap.allow_userspace_senders = true;
        let mut buf = [0u8; RECV_BUFFER_SIZE];
        recv_until(&kernel_only, &mut buf, |r| {
            matches!(r, RecvResult::WouldBlock)
        });

        let sender = Sender::new();
        let payload = unique_payload();
        if !sender.send(&payload) {
            return;
        }
        let pid = sender.pid();
        assert_ne!(pid, 0);
        recv_until(
            &kernel_only,
            &mut buf,
            |r| matches!(r, RecvResult::Dropped(DropReason::NotKernel { pid: p }) if *p == pid),
        );
        recv_until(
            &tap,
            &mut buf,
            |r| matches!(r, RecvResult::Message(m) if *m == &payload[..]),
        );
    }

    #[test]
    fn long_message_is_truncated_not_parsed() {
        let mut tap = UeventSocket::open(0).unwrap();
        tap.allow_userspace_senders = true;
        let payload = unique_payload();
        if !Sender::new().send(&payload) {
            return;
        }
        let mut small = [0u8; 16];
        let len = payload.len();
        recv_until(
            &tap,
            &mut small,
            |r| matches!(r, RecvResult::Dropped(DropReason::Truncated { len: l }) if *l == len),
        );
    }

    #[test]
    fn overflow_is_reported() {
        // The smallest buffer the kernel allows, then more than fits.
        let sock = UeventSocket::open(1).unwrap();
        let sender = Sender::new();
        let payload = [b'x'; 1024];
        for _ in 0..16 {
            if !sender.send(&payload) {
                return;
            }
        }
        let mut buf = [0u8; RECV_BUFFER_SIZE];
        recv_until(&sock, &mut buf, |r| matches!(r, RecvResult::Overflow));
    }
}
