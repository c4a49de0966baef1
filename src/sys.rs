//! The only place with `unsafe`: what rustix does not wrap and the kernel ABI forces on us.
//!
//! - signal blocking and signalfd (so signals become readable events in the poll loop)
//! - one blocking call with SIGTERM and SIGINT deliverable, so they can interrupt it
//!   ([`with_stop_signals_deliverable`])
//! - the NVMe admin passthru ioctl (Get Log Page on a discovery controller)
//!
//! # References
//! - signalfd(2), sigprocmask(2), pthread_sigmask(3), sigaction(2), signal(7) ("Interruption of
//!   system calls and library functions by signal handlers")
//! - include/uapi/linux/nvme_ioctl.h (`struct nvme_passthru_cmd`, `NVME_IOCTL_ADMIN_CMD`)

#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};

/// Signals the daemon handles; they are blocked and read through a signalfd.
pub const HANDLED_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully before any use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in signals {
        // SAFETY: as above; sigaddset only fails for invalid signal numbers, which our constants are not.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    set
}

fn last_errno() -> rustix::io::Errno {
    rustix::io::Errno::from_raw_os_error(
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    )
}

/// A signalfd for [`HANDLED_SIGNALS`], which are blocked for the whole process first so they are never
/// delivered asynchronously (no handler races with the poll loop).
pub struct SignalFd(OwnedFd);

impl SignalFd {
    pub fn new() -> Result<SignalFd> {
        let set = signal_set(&HANDLED_SIGNALS);
        // SAFETY: `set` is initialised; a null old-set pointer is allowed. We are single-threaded.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(Error::os("block signals", last_errno()));
        }
        // SAFETY: -1 asks for a new fd; `set` is initialised; the flags are valid for signalfd.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::os("create signalfd", last_errno()));
        }
        // SAFETY: signalfd returned a new fd that nothing else owns.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The next pending signal number, or `None` when there is none.
    pub fn read(&self) -> Result<Option<i32>> {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        match rustix::io::read(&self.0, &mut info) {
            Ok(n) if n == info.len() => {
                // ssi_signo is the first u32 of struct signalfd_siginfo.
                let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                Ok(Some(signo as i32))
            }
            Ok(n) => Err(Error::invalid(
                "read signalfd",
                format!("short read of {n} bytes"),
            )),
            Err(rustix::io::Errno::AGAIN) => Ok(None),
            Err(e) => Err(Error::os("read signalfd", e)),
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The signals that stop the daemon, and may interrupt a call run by [`with_stop_signals_deliverable`].
pub const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

/// `SIGTERM`, `SIGINT`, `SIGHUP` as text for log lines.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Bit `1 << signo` for every stop signal the handler caught. Written only by [`note_stop_signal`].
static CAUGHT: AtomicU32 = AtomicU32::new(0);

/// The handler installed while a call runs with the stop signals deliverable: it only notes the
/// signal (an atomic store is async-signal-safe and leaves errno alone); the signal is raised again
/// once it is blocked, for the signalfd.
extern "C" fn note_stop_signal(sig: libc::c_int) {
    if (0..32).contains(&sig) {
        CAUGHT.fetch_or(1 << sig, Ordering::SeqCst);
    }
}

fn sigmask(how: libc::c_int, set: &libc::sigset_t, old: Option<&mut libc::sigset_t>) -> bool {
    let old = old.map_or(std::ptr::null_mut(), |o| o as *mut libc::sigset_t);
    // SAFETY: `set` is an initialised sigset_t; `old` is null or points to an exclusively borrowed
    // sigset_t the call fills in. pthread_sigmask only touches the calling thread's mask.
    unsafe { libc::pthread_sigmask(how, set, old) == 0 }
}

/// Run `f`, one blocking system call, with SIGTERM and SIGINT deliverable, so that they end it with
/// EINTR instead of waiting for it; the signal stays pending for the daemon's signalfd afterwards.
///
/// Returns `f`'s result, and the stop signal that arrived while it ran, if any. When one was already
/// pending before (blocked, not read from the signalfd yet), `f` is not run and the result is
/// `Err(EINTR)`: a stop asked for is never answered with a new blocking call.
///
/// How (single-threaded process, the stop signals blocked as [`SignalFd::new`] leaves them):
/// 1. install a handler for both without `SA_RESTART`: a wait the kernel allows signals to
///    interrupt then fails with EINTR instead of restarting (signal(7));
/// 2. unblock both; a signal already pending is handled at this point and `f` is skipped;
/// 3. run `f`;
/// 4. restore the previous mask (both blocked again), then the previous handlers;
/// 5. raise each caught signal again to this thread: blocked, it stays pending and the signalfd
///    reads it as if the handler had never run (a signal arriving after `f` returned is caught
///    in step 4's window and re-raised the same way).
///
/// If the stop signals are not blocked on entry (no signalfd reads them: a host test, a library
/// caller), `f` runs as is, with no handler: their default action already interrupts it.
/// A signal that lands between the check in step 2 and the moment `f` enters its wait is handled
/// before the wait begins and does not interrupt it (the classic race that ppoll exists for; a
/// write has no such variant): that connect then takes its kernel timeout, as it did before.
/// The handlers are restored after each call, so nothing outside it sees a changed disposition.
///
/// # References
/// - signal(7), sigaction(2) (`SA_RESTART`), pthread_sigmask(3), signalfd(2)
/// - kernel: net/ipv4/af_inet.c `__inet_stream_connect` (`sock_intr_errno`), the wait that
///   NVMe/TCP's socket connect blocks in
pub fn with_stop_signals_deliverable<T>(
    f: impl FnOnce() -> rustix::io::Result<T>,
) -> (rustix::io::Result<T>, Option<i32>) {
    let stop = signal_set(&STOP_SIGNALS);
    let mut old_mask = signal_set(&[]);
    // Query: SIG_BLOCK with an empty set changes nothing and returns the current mask.
    let empty = signal_set(&[]);
    if !sigmask(libc::SIG_BLOCK, &empty, Some(&mut old_mask)) {
        return (f(), None);
    }
    // SAFETY: `old_mask` was filled in by pthread_sigmask; the signal numbers are valid.
    let blocked = STOP_SIGNALS
        .iter()
        .all(|&s| unsafe { libc::sigismember(&old_mask, s) } == 1);
    if !blocked {
        return (f(), None);
    }

    // SAFETY: sigaction is plain data; every field we rely on is set below (sa_mask by sigemptyset).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = note_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_mask = signal_set(&STOP_SIGNALS);
    action.sa_flags = 0; // no SA_RESTART: the point of it all
    // SAFETY: as above, filled in by sigaction before it is read.
    let mut old_actions: [libc::sigaction; 2] = unsafe { std::mem::zeroed() };
    let mut installed = [false; 2];
    for (i, &sig) in STOP_SIGNALS.iter().enumerate() {
        // SAFETY: `action` is initialised and its handler only touches an atomic (async-signal-safe);
        // `old_actions[i]` is exclusively borrowed for the kernel to fill in.
        installed[i] = unsafe { libc::sigaction(sig, &action, &mut old_actions[i]) } == 0;
    }

    CAUGHT.store(0, Ordering::SeqCst);
    let result = if installed.iter().all(|&ok| ok) && sigmask(libc::SIG_UNBLOCK, &stop, None) {
        // A signal pending before the call has been handled by the unblock itself.
        let r = if CAUGHT.load(Ordering::SeqCst) != 0 {
            Err(rustix::io::Errno::INTR)
        } else {
            f()
        };
        // Cannot fail: a valid `how` and initialised sets.
        sigmask(libc::SIG_SETMASK, &old_mask, None);
        r
    } else {
        f()
    };

    for (i, &sig) in STOP_SIGNALS.iter().enumerate() {
        if installed[i] {
            // SAFETY: `old_actions[i]` is what sigaction returned for `sig` above; restoring it is
            // what the process had before this call. The signals are blocked again.
            unsafe { libc::sigaction(sig, &old_actions[i], std::ptr::null_mut()) };
        }
    }
    let caught = CAUGHT.swap(0, Ordering::SeqCst);
    let mut first = None;
    for &sig in &STOP_SIGNALS {
        if caught & (1 << sig) != 0 {
            // Thread-directed (tgkill), like a re-raise should be: the signal is blocked in this
            // thread, so it stays pending for its signalfd and no other thread can take it.
            // SAFETY: raise has no memory-safety preconditions; `sig` is a valid signal number.
            unsafe { libc::raise(sig) };
            first.get_or_insert(sig);
        }
    }
    (result, first)
}

/// `struct nvme_passthru_cmd` (72 bytes, include/uapi/linux/nvme_ioctl.h).
#[repr(C)]
#[derive(Default)]
struct NvmePassthruCmd {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

const _: () = assert!(std::mem::size_of::<NvmePassthruCmd>() == 72);

/// _IOWR('N', 0x41, struct nvme_passthru_cmd)
const NVME_IOCTL_ADMIN_CMD: libc::c_ulong =
    (3 << 30) | (72 << 16) | ((b'N' as libc::c_ulong) << 8) | 0x41;
const NVME_ADMIN_GET_LOG_PAGE: u8 = 0x02;

/// Command dwords 10-13 of Get Log Page for `len` bytes at `offset` (len a multiple of 4, >= 4).
pub fn get_log_page_cdws(lid: u8, rae: bool, offset: u64, len: u32) -> [u32; 4] {
    let numd = len / 4 - 1; // zero-based dword count
    let cdw10 = lid as u32 | (rae as u32) << 15 | (numd & 0xffff) << 16;
    let cdw11 = numd >> 16;
    [cdw10, cdw11, offset as u32, (offset >> 32) as u32]
}

/// NVMe status returned by the controller (positive ioctl return value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvmeStatus(pub u32);

/// Get Log Page through the admin passthru ioctl into `buf` (length a multiple of 4).
///
/// `Ok(Err(status))` when the controller completed the command with an NVMe error status.
pub fn nvme_get_log_page(
    ctrl: BorrowedFd<'_>,
    lid: u8,
    rae: bool,
    offset: u64,
    buf: &mut [u8],
) -> rustix::io::Result<std::result::Result<(), NvmeStatus>> {
    if buf.len() < 4 || buf.len() % 4 != 0 || buf.len() > u32::MAX as usize {
        return Err(rustix::io::Errno::INVAL);
    }
    let [cdw10, cdw11, cdw12, cdw13] = get_log_page_cdws(lid, rae, offset, buf.len() as u32);
    let mut cmd = NvmePassthruCmd {
        opcode: NVME_ADMIN_GET_LOG_PAGE,
        addr: buf.as_mut_ptr() as u64,
        data_len: buf.len() as u32,
        cdw10,
        cdw11,
        cdw12,
        cdw13,
        ..Default::default()
    };
    // SAFETY: `cmd` is a properly laid out nvme_passthru_cmd; `addr`/`data_len` describe `buf`, which is
    // exclusively borrowed for the duration of the call, so the kernel's write into it cannot alias.
    let rc = unsafe { libc::ioctl(ctrl.as_raw_fd(), NVME_IOCTL_ADMIN_CMD as _, &mut cmd) };
    match rc {
        0 => Ok(Ok(())),
        rc if rc > 0 => Ok(Err(NvmeStatus(rc as u32))),
        _ => Err(last_errno()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Take a pending stop signal of this thread (they are blocked), without waiting.
    fn take_pending() -> Option<i32> {
        let set = signal_set(&STOP_SIGNALS);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `set` and `zero` are initialised; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
        (sig > 0).then_some(sig)
    }

    // One test for every case: the handler and CAUGHT are process-wide, so two tests in parallel
    // threads would restore each other's dispositions.
    #[test]
    fn stop_signal_interrupts_the_call_and_stays_pending() {
        use rustix::io::Errno;
        use std::io::Write as _;
        use std::time::{Duration, Instant};

        // As SignalFd::new leaves them (this thread's mask only: the harness has other threads).
        assert!(sigmask(libc::SIG_BLOCK, &signal_set(&STOP_SIGNALS), None));
        assert_eq!(take_pending(), None);

        // Already pending: the call is not made, and the signal is pending again afterwards.
        // SAFETY: raise has no memory-safety preconditions; SIGINT is blocked in this thread.
        unsafe { libc::raise(libc::SIGINT) };
        let mut ran = false;
        let (r, sig) = with_stop_signals_deliverable(|| {
            ran = true;
            Ok(())
        });
        assert_eq!((r, sig, ran), (Err(Errno::INTR), Some(libc::SIGINT), false));
        assert_eq!(take_pending(), Some(libc::SIGINT));

        // During a blocking read that SA_RESTART would restart: EINTR, then pending for the signalfd.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let (done, watchdog) = std::sync::mpsc::channel::<()>();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: `me` is the test thread, alive until it has joined this one.
            unsafe { libc::pthread_kill(me, libc::SIGTERM) };
            // If the read was not interrupted, end it rather than hang the test run.
            if watchdog.recv_timeout(Duration::from_secs(5)).is_err() {
                let _ = (&b).write_all(b"x");
            }
        });
        let start = Instant::now();
        let mut byte = [0u8; 1];
        let (r, sig) = with_stop_signals_deliverable(|| rustix::io::read(&a, &mut byte));
        let took = start.elapsed();
        let _ = done.send(());
        sender.join().unwrap();
        assert_eq!((r, sig), (Err(Errno::INTR), Some(libc::SIGTERM)));
        assert!(took < Duration::from_secs(4), "{took:?}");
        assert_eq!(take_pending(), Some(libc::SIGTERM));

        // Nothing arrives: the result is f's, nothing is left pending.
        assert_eq!(with_stop_signals_deliverable(|| Ok(5)), (Ok(5), None));
        assert_eq!(take_pending(), None);

        // Stop signals not blocked: f runs as is.
        assert!(sigmask(libc::SIG_UNBLOCK, &signal_set(&STOP_SIGNALS), None));
        assert_eq!(with_stop_signals_deliverable(|| Ok(6)), (Ok(6), None));
    }

    #[test]
    fn ioctl_number_matches_kernel() {
        // NVME_IOCTL_ADMIN_CMD as printed by a C program including linux/nvme_ioctl.h
        assert_eq!(NVME_IOCTL_ADMIN_CMD, 0xC048_4E41);
    }

    #[test]
    fn get_log_page_dwords() {
        // 4 KiB of log 0x70 at offset 1024, RAE set: NUMD = 1023
        let [c10, c11, c12, c13] = get_log_page_cdws(0x70, true, 1024, 4096);
        assert_eq!(c10, 0x70 | 1 << 15 | 1023 << 16);
        assert_eq!(c11, 0);
        assert_eq!((c12, c13), (1024, 0));
        // NUMD above 16 bits spills into cdw11 (NUMDU)
        let [c10, c11, _, c13] = get_log_page_cdws(0x70, false, 1 << 33, 1 << 20);
        assert_eq!(c10 >> 16, ((1 << 18) - 1) & 0xffff);
        assert_eq!(c11, ((1 << 18) - 1) >> 16);
        assert_eq!(c13, 2);
    }
}
