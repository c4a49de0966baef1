//! The only place with `unsafe`: what rustix does not wrap and the kernel ABI forces on us.
//!
//! - signal blocking and signalfd (so signals become readable events in the poll loop)
//! - the NVMe admin passthru ioctl (Get Log Page on a discovery controller)
//!
//! # References
//! - signalfd(2), sigprocmask(2)
//! - include/uapi/linux/nvme_ioctl.h (`struct nvme_passthru_cmd`, `NVME_IOCTL_ADMIN_CMD`)

#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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
