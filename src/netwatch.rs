//! The host's network as the shell follows it: one rtnetlink socket in the poll loop.
//!
//! At start the links and then the addresses are dumped (the kernel runs one dump at a time per
//! socket), and from then on the link and address groups say what changed. A receive buffer
//! overrun (ENOBUFS) means changes were lost: the view is dumped again, as the uevent socket's
//! overrun rescans sysfs. What the changes mean for the paths is decided elsewhere
//! ([`crate::nbft_paths::readiness`], [`crate::engine::Input::NetworkReady`]); this module only
//! keeps the view true.

use std::os::fd::{AsFd, BorrowedFd};

use crate::rtnetlink::{NetChange, NetView, RouteSocket, RtMsg};

/// Which dump is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dump {
    None,
    Links,
    Addrs,
}

pub struct NetWatch {
    sock: Option<RouteSocket>,
    pub view: NetView,
    dump: Dump,
    buf: Vec<u8>,
    msgs: Vec<RtMsg>,
}

/// Big enough for a dump datagram (the kernel fills up to a page, or 32 KiB on big-page hosts).
const RECV_BUFFER: usize = 64 * 1024;

impl NetWatch {
    /// Open the socket and start the dumps; without the socket the view stays empty and the
    /// caller is told (logged here): paths that wait on the network then wait for ever.
    pub fn open() -> NetWatch {
        let mut w = NetWatch {
            sock: None,
            view: NetView::default(),
            dump: Dump::None,
            buf: vec![0; RECV_BUFFER],
            msgs: Vec::new(),
        };
        match RouteSocket::open() {
            Ok(s) => {
                w.sock = Some(s);
                w.start_dump();
            }
            Err(e) => warn!("{e}: interfaces and addresses coming up will not be seen"),
        }
        w
    }

    pub fn is_open(&self) -> bool {
        self.sock.is_some()
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.sock.as_ref().map(|s| s.as_fd())
    }

    /// The dumps are done: the view is the host's as of now.
    pub fn synced(&self) -> bool {
        self.dump == Dump::None
    }

    fn start_dump(&mut self) {
        let Some(s) = &self.sock else {
            return;
        };
        self.view = NetView::default();
        match s.request_dump_links() {
            Ok(()) => self.dump = Dump::Links,
            Err(e) => {
                warn!("{e}");
                self.dump = Dump::None;
            }
        }
    }

    /// Wait (at most `timeout_ms`) for the startup dumps to finish, so that paths whose network is
    /// already up are known ready before the first discovery pass.
    pub fn wait_synced(&mut self, timeout_ms: u64, changes: &mut Vec<NetChange>) {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        while !self.synced() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                warn!(
                    "the rtnetlink dump did not finish in {timeout_ms} ms: going on with what it gave"
                );
                return;
            }
            let Some(fd) = self.fd() else {
                return;
            };
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let ts = rustix::event::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    warn!("unable to poll the rtnetlink socket: {e}");
                    return;
                }
            }
            self.drain(changes);
        }
    }

    /// Read everything queued; what became ready is appended to `changes`.
    pub fn drain(&mut self, changes: &mut Vec<NetChange>) {
        loop {
            let Some(sock) = &self.sock else {
                return;
            };
            let got = match sock.recv(&mut self.buf) {
                crate::rtnetlink::RecvResult::Message(m) => {
                    self.msgs.clear();
                    crate::rtnetlink::parse(m, &mut self.msgs)
                }
                crate::rtnetlink::RecvResult::WouldBlock => return,
                crate::rtnetlink::RecvResult::Overflow => {
                    warn!(
                        "rtnetlink socket overflowed: network changes were lost; reading links and addresses again"
                    );
                    self.start_dump();
                    continue;
                }
                crate::rtnetlink::RecvResult::Err(e) => {
                    warn!("{e}");
                    return;
                }
            };
            if let Err(e) = got {
                // What parsed before the bad message is applied; the rest of that datagram
                // is lost, so read the truth again.
                warn!("{e}: reading links and addresses again");
                self.apply_msgs(changes);
                self.start_dump();
                continue;
            }
            self.apply_msgs(changes);
        }
    }

    fn apply_msgs(&mut self, changes: &mut Vec<NetChange>) {
        let msgs = std::mem::take(&mut self.msgs);
        for m in &msgs {
            match m {
                RtMsg::Done => self.dump_done(),
                RtMsg::Error(errno) if self.dump != Dump::None => {
                    warn!("rtnetlink dump refused (errno {errno}): going on without it");
                    self.dump = Dump::None;
                }
                m => {
                    if let Some(c) = self.view.apply(m) {
                        changes.push(c);
                    }
                }
            }
        }
        self.msgs = msgs;
    }

    fn dump_done(&mut self) {
        match self.dump {
            Dump::Links => {
                let Some(s) = &self.sock else {
                    return;
                };
                match s.request_dump_addrs() {
                    Ok(()) => self.dump = Dump::Addrs,
                    Err(e) => {
                        warn!("{e}");
                        self.dump = Dump::None;
                    }
                }
            }
            Dump::Addrs | Dump::None => self.dump = Dump::None,
        }
    }
}
