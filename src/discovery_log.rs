//! The discovery log page (Get Log Page 0x70): read consistently, parse defensively.
//!
//! Layout (design.md §5): header genctr u64 @0, numrec u64 @8, recfmt u16 @16; entries of 1024
//! bytes from byte 1024. Every entry comes from a remote controller: an entry with a field we could
//! not pass safely to /dev/nvme-fabrics is refused on its own ([`EntryError`]), the others are kept.
//!
//! Reading: header, entries in 4 KiB chunks, header again; if the generation counter moved, start
//! over. RAE (Retain Asynchronous Event) is set on every read but the final header read. The
//! controller sends no further "discovery log changed" event until a read clears RAE, so clearing it
//! at the end re-arms the event: a change before that read shows as a generation mismatch (we read
//! again), a change after it raises a new event. libnvme clears it at the end of each Get Log Page
//! command instead, so an event can arrive while it is still reading; we avoid that extra wake-up.
//!
//! A controller may announce any numrec. We read at most [`MAX_ENTRIES`] (1 MiB of log) and warn:
//! refusing the whole log would leave every subsystem unconnected for the sake of the ones past the
//! limit, and a hostile controller gains nothing it could not get with 1024 junk entries.
//! [`DiscoveryLog::numrec`] keeps the announced count so callers can tell the log was cut.
//!
//! # References
//! - NVMe Base Specification 2.0, 5.16.1.23 Discovery Log Page; Get Log Page RAE bit (CDW10 bit 15)
//! - include/linux/nvme.h `struct nvmf_disc_rsp_page_hdr`, `struct nvmf_disc_rsp_page_entry`
//! - libnvme src/nvme/fabrics.c `nvme_discovery_log`, `nvmf_connect_disc_entry` (adrfam checks)

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::addr::{
    FixedStr, Nqn, TRADDR_MAX, TRSVCID_MAX, Transport, TransportAddr, unset_to_empty,
};
use crate::error::{Context, Error, Result};
use crate::fabrics::{ValueProblem, value_problem};

/// Log identifier of the discovery log page.
pub const LID_DISCOVERY: u8 = 0x70;
/// Entries start after a 1024-byte header.
pub const HEADER_LEN: usize = 1024;
pub const ENTRY_LEN: usize = 1024;
/// Where an entry's transport specific address subtype (TSAS, 256 bytes) starts.
const TSAS_AT: usize = 768;
/// genctr, numrec and recfmt are 18 bytes, read as 20 (whole dwords), as libnvme does.
pub const HEADER_READ_LEN: usize = 20;
/// Most entries we read from one log (see the module docs).
pub const MAX_ENTRIES: usize = 1024;
/// Entries are read 4 KiB at a time, as libnvme does (every controller's MDTS allows it).
const CHUNK: usize = 4096;

/// The start of the log page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    pub genctr: u64,
    pub numrec: u64,
    pub recfmt: u16,
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn parse_header(buf: &[u8]) -> Result<LogHeader> {
    match (le_u64(buf, 0), le_u64(buf, 8), le_u16(buf, 16)) {
        (Some(genctr), Some(numrec), Some(recfmt)) => Ok(LogHeader {
            genctr,
            numrec,
            recfmt,
        }),
        _ => Err(Error::invalid(
            "parse the discovery log header",
            format!("{} bytes, need 18", buf.len()),
        )),
    }
}

/// What an entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubType {
    /// Another discovery subsystem.
    Referral,
    NvmSubsystem,
    /// The discovery subsystem that returned this log (TP8013).
    CurrentDiscovery,
    Unknown(u8),
}

impl From<u8> for SubType {
    fn from(b: u8) -> SubType {
        match b {
            1 => SubType::Referral,
            2 => SubType::NvmSubsystem,
            3 => SubType::CurrentDiscovery,
            other => SubType::Unknown(other),
        }
    }
}

/// One checked discovery log entry; every string is safe to put into a connect string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryEntry {
    pub transport: Transport,
    /// 1 IPv4, 2 IPv6, 3 InfiniBand, 4 FC, 254 loop (nvmet).
    pub adrfam: u8,
    pub subtype: SubType,
    pub treq: u8,
    pub portid: u16,
    pub cntlid: u16,
    pub asqsz: u16,
    pub eflags: u16,
    /// TSAS byte 0 of a TCP entry (SECTYPE: 0 none, 1 TLS 1.2, 2 TLS 1.3); 0 for other transports,
    /// whose TSAS means something else.
    pub tcp_sectype: u8,
    pub trsvcid: FixedStr<TRSVCID_MAX>,
    pub subnqn: Nqn,
    pub traddr: FixedStr<TRADDR_MAX>,
}

impl DiscoveryEntry {
    /// EFLAGS bit 0 (DUPRETINFO): this subsystem is also reachable through other entries.
    pub fn duplicate_returned_info(&self) -> bool {
        self.eflags & 1 != 0
    }

    /// EFLAGS bit 1 (EPCSD): the host should keep a persistent connection to this discovery subsystem.
    pub fn explicit_persistent_connection(&self) -> bool {
        self.eflags & 2 != 0
    }

    /// EFLAGS bit 2 (NCC): no connectivity to a centralized discovery controller.
    pub fn no_cdc_connectivity(&self) -> bool {
        self.eflags & 4 != 0
    }

    /// TREQ bit 2: the controller lets the host disable SQ flow control (libnvme then sets
    /// `disable_sqflow`).
    pub fn sq_flow_control_disable_allowed(&self) -> bool {
        self.treq & 4 != 0
    }

    /// Where the entry is reached. The host side is left empty: the caller copies host_traddr,
    /// host_iface and host NQN from the discovery controller that returned the entry.
    pub fn to_addr(&self) -> TransportAddr {
        TransportAddr {
            transport: self.transport,
            traddr: FixedStr::new(unset_to_empty(self.traddr.as_str())).unwrap_or_default(),
            trsvcid: FixedStr::new(unset_to_empty(self.trsvcid.as_str())).unwrap_or_default(),
            host_traddr: FixedStr::EMPTY,
            host_iface: FixedStr::EMPTY,
            hostnqn: Nqn::EMPTY,
        }
    }
}

/// What is wrong with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    Short(usize),
    UnknownTrtype(u8),
    /// An address family the transport does not use (libnvme skips these too).
    WrongAdrfam(u8),
    Value(ValueProblem),
}

/// An entry that was refused; the log's other entries are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryError {
    /// Position in the log, from 0.
    pub index: usize,
    pub field: &'static str,
    pub problem: EntryProblem,
    /// The refused value, escaped and cut, so an operator sees which subsystem or address it was
    /// (empty when the problem is not a value's).
    pub value: Preview,
}

/// An escaped, cut copy of a remote value for log lines; inline, no allocation.
pub type Preview = crate::addr::FixedStr<56>;

/// `raw` with every byte outside printable ASCII (and `"` and `\`) escaped, cut to fit [`Preview`].
pub fn preview(raw: &[u8]) -> Preview {
    let mut out = [0u8; 56];
    let mut len = 0;
    let mut cut = false;
    for &b in raw {
        let esc: Vec<u8> = std::ascii::escape_default(b).collect();
        if len + esc.len() > out.len() - 3 {
            cut = true;
            break;
        }
        out[len..len + esc.len()].copy_from_slice(&esc);
        len += esc.len();
    }
    if cut {
        out[len..len + 3].copy_from_slice(b"...");
        len += 3;
    }
    // Only ASCII was written.
    Preview::new(std::str::from_utf8(&out[..len]).unwrap_or("")).unwrap_or_default()
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "discovery log entry {}: {} ", self.index, self.field)?;
        if !self.value.is_empty() {
            write!(f, "\"{}\" ", self.value)?;
        }
        match self.problem {
            EntryProblem::Short(n) => write!(f, "is {n} bytes, need {ENTRY_LEN}"),
            EntryProblem::UnknownTrtype(t) => write!(f, "{t} is not a known transport"),
            EntryProblem::WrongAdrfam(a) => write!(f, "{a} does not fit the transport"),
            EntryProblem::Value(p) => write!(f, "{p}"),
        }
    }
}

impl std::error::Error for EntryError {}

/// A string field: up to the first NUL, spaces trimmed, checked like a connect string value.
fn text_field<'a>(
    raw: &'a [u8],
    index: usize,
    field: &'static str,
    required: bool,
) -> std::result::Result<&'a str, EntryError> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let mut value = raw.get(..end).unwrap_or(&[]);
    // Space padding only: any other byte at either end is the remote's and gets checked.
    while let [b' ', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' '] = value {
        value = rest;
    }
    let problem = match value_problem(field, value) {
        Some(ValueProblem::Empty) if !required => None,
        p => p,
    };
    if let Some(p) = problem {
        return Err(EntryError {
            index,
            field,
            problem: EntryProblem::Value(p),
            value: preview(value),
        });
    }
    // value_problem let through printable ASCII only.
    std::str::from_utf8(value).map_err(|_| EntryError {
        index,
        field,
        problem: EntryProblem::Value(ValueProblem::NotPrintable(0x80)),
        value: preview(value),
    })
}

/// Parse one 1024-byte entry; see [`parse_entry_at`].
pub fn parse_entry(raw: &[u8]) -> std::result::Result<DiscoveryEntry, EntryError> {
    parse_entry_at(0, raw)
}

/// Parse the entry at position `index` of the log (the index only goes into errors).
pub fn parse_entry_at(index: usize, raw: &[u8]) -> std::result::Result<DiscoveryEntry, EntryError> {
    let err = |field, problem| EntryError {
        index,
        field,
        problem,
        value: Preview::EMPTY,
    };
    let Some(e) = raw.get(..ENTRY_LEN) else {
        return Err(err("entry", EntryProblem::Short(raw.len())));
    };
    let byte = |at: usize| e.get(at).copied().unwrap_or(0);
    let word = |at: usize| le_u16(e, at).unwrap_or(0);
    let transport = Transport::from_trtype(byte(0))
        .ok_or_else(|| err("trtype", EntryProblem::UnknownTrtype(byte(0))))?;
    let adrfam = byte(1);
    let adrfam_ok = match transport {
        Transport::Tcp | Transport::Rdma => matches!(adrfam, 1 | 2),
        Transport::Fc => adrfam == 4,
        Transport::Loop => true,
    };
    if !adrfam_ok {
        return Err(err("adrfam", EntryProblem::WrongAdrfam(adrfam)));
    }
    let field = |at: usize, len: usize| e.get(at..at + len).unwrap_or(&[]);
    let trsvcid = text_field(field(32, 32), index, "trsvcid", false)?;
    let subnqn = text_field(field(256, 256), index, "subnqn", true)?;
    let traddr = text_field(field(512, 256), index, "traddr", false)?;
    Ok(DiscoveryEntry {
        transport,
        adrfam,
        subtype: SubType::from(byte(2)),
        treq: byte(3),
        portid: word(4),
        cntlid: word(6),
        asqsz: word(8),
        eflags: word(10),
        tcp_sectype: if transport == Transport::Tcp {
            byte(TSAS_AT)
        } else {
            0
        },
        // The lengths were checked against these capacities by text_field.
        trsvcid: FixedStr::new(trsvcid).unwrap_or_default(),
        subnqn: Nqn::new(subnqn).unwrap_or_default(),
        traddr: FixedStr::new(traddr).unwrap_or_default(),
    })
}

/// A log's entries in log order, each kept at its strings' real length. As [`DiscoveryEntry`]
/// values (fixed-size traddr and NQN, 536 bytes with the `Result`) a log of [`MAX_ENTRIES`]
/// took 536 KiB while the run worked through it; packed, an entry is 32 bytes and its strings'
/// length (about 100 bytes for an IP address and a typical NQN; a hostile log with every field at
/// its maximum still costs about what it did). Refused entries stay in place so indexes match
/// the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries(Vec<Packed>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Packed {
    Entry(PackedEntry),
    Refused(Box<EntryError>),
}

const _: () = assert!(TRSVCID_MAX <= u8::MAX as usize);
const _: () = assert!(crate::addr::NQN_MAX <= u8::MAX as usize);

#[derive(Debug, Clone, PartialEq, Eq)]
struct PackedEntry {
    transport: Transport,
    adrfam: u8,
    subtype: SubType,
    treq: u8,
    tcp_sectype: u8,
    portid: u16,
    cntlid: u16,
    asqsz: u16,
    eflags: u16,
    trsvcid_len: u8,
    subnqn_len: u8,
    /// trsvcid, subnqn and traddr one after another.
    text: Box<str>,
}

impl Packed {
    fn new(e: std::result::Result<DiscoveryEntry, EntryError>) -> Packed {
        let e = match e {
            Ok(e) => e,
            Err(refused) => return Packed::Refused(Box::new(refused)),
        };
        let (trsvcid, subnqn) = (e.trsvcid.as_str(), e.subnqn.as_str());
        let text = [trsvcid, subnqn, e.traddr.as_str()].concat();
        Packed::Entry(PackedEntry {
            transport: e.transport,
            adrfam: e.adrfam,
            subtype: e.subtype,
            treq: e.treq,
            tcp_sectype: e.tcp_sectype,
            portid: e.portid,
            cntlid: e.cntlid,
            asqsz: e.asqsz,
            eflags: e.eflags,
            // At most TRSVCID_MAX (32) and NQN_MAX (223) bytes: both fit (asserted below).
            trsvcid_len: trsvcid.len() as u8,
            subnqn_len: subnqn.len() as u8,
            text: text.into_boxed_str(),
        })
    }

    fn unpack(&self) -> std::result::Result<DiscoveryEntry, EntryError> {
        let p = match self {
            Packed::Entry(p) => p,
            Packed::Refused(refused) => return Err(**refused),
        };
        let (a, b) = (
            usize::from(p.trsvcid_len),
            usize::from(p.trsvcid_len) + usize::from(p.subnqn_len),
        );
        // The text and the lengths were made together from strings that fit these capacities.
        let part = |range: std::ops::Range<usize>| p.text.get(range).unwrap_or("");
        Ok(DiscoveryEntry {
            transport: p.transport,
            adrfam: p.adrfam,
            subtype: p.subtype,
            treq: p.treq,
            portid: p.portid,
            cntlid: p.cntlid,
            asqsz: p.asqsz,
            eflags: p.eflags,
            tcp_sectype: p.tcp_sectype,
            trsvcid: FixedStr::new(part(0..a)).unwrap_or_default(),
            subnqn: Nqn::new(part(a..b)).unwrap_or_default(),
            traddr: FixedStr::new(part(b..p.text.len())).unwrap_or_default(),
        })
    }
}

impl Entries {
    pub fn with_capacity(n: usize) -> Entries {
        Entries(Vec::with_capacity(n))
    }

    pub fn push(&mut self, e: std::result::Result<DiscoveryEntry, EntryError>) {
        self.0.push(Packed::new(e));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entry at position `index` of the log.
    pub fn get(&self, index: usize) -> Option<std::result::Result<DiscoveryEntry, EntryError>> {
        self.0.get(index).map(Packed::unpack)
    }

    /// In log order, each unpacked as it is reached.
    pub fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = std::result::Result<DiscoveryEntry, EntryError>> + '_ {
        self.0.iter().map(Packed::unpack)
    }
}

impl FromIterator<std::result::Result<DiscoveryEntry, EntryError>> for Entries {
    fn from_iter<I: IntoIterator<Item = std::result::Result<DiscoveryEntry, EntryError>>>(
        iter: I,
    ) -> Entries {
        Entries(iter.into_iter().map(Packed::new).collect())
    }
}

impl Extend<std::result::Result<DiscoveryEntry, EntryError>> for Entries {
    fn extend<I: IntoIterator<Item = std::result::Result<DiscoveryEntry, EntryError>>>(
        &mut self,
        iter: I,
    ) {
        self.0.extend(iter.into_iter().map(Packed::new));
    }
}

/// A consistent snapshot of a discovery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryLog {
    pub genctr: u64,
    /// As announced; more than `entries.len()` when the log was cut at [`MAX_ENTRIES`].
    pub numrec: u64,
    pub entries: Entries,
}

/// Something that reads bytes of the discovery log page: a controller, or test data.
pub trait LogPageSource {
    /// Fill `buf` with the log from byte `offset` (`buf.len()` is a multiple of 4). `retain` is
    /// the RAE bit: keep the "log changed" event pending (see the module docs).
    fn read(&mut self, offset: u64, buf: &mut [u8], retain: bool) -> Result<()>;
}

fn read_header<S: LogPageSource>(src: &mut S, retain: bool) -> Result<LogHeader> {
    let mut buf = [0u8; HEADER_READ_LEN];
    src.read(0, &mut buf, retain)?;
    parse_header(&buf)
}

fn read_entries<S: LogPageSource>(src: &mut S, count: usize) -> Result<Entries> {
    let mut entries = Entries::with_capacity(count);
    let mut buf = [0u8; CHUNK];
    while entries.len() < count {
        let first = entries.len();
        let n = (count - first).min(CHUNK / ENTRY_LEN);
        let chunk = buf.get_mut(..n * ENTRY_LEN).unwrap_or(&mut []);
        src.read((HEADER_LEN + first * ENTRY_LEN) as u64, chunk, true)?;
        for (i, raw) in chunk.chunks_exact(ENTRY_LEN).enumerate() {
            entries.push(parse_entry_at(first + i, raw));
        }
    }
    Ok(entries)
}

/// Read the whole log so that the header before and after the entries agree; up to `max_tries`
/// times (at least once), then an error. After an error the caller should schedule a new read:
/// the last attempt cleared the pending event.
pub fn read_discovery_log<S: LogPageSource>(src: &mut S, max_tries: u32) -> Result<DiscoveryLog> {
    let tries = max_tries.max(1);
    for attempt in 1..=tries {
        let first = read_header(src, true)?;
        let count = usize::try_from(first.numrec).map_or(MAX_ENTRIES, |n| n.min(MAX_ENTRIES));
        if attempt == 1 && first.numrec > MAX_ENTRIES as u64 {
            warn!(
                "discovery log announces {} entries: reading only the first {MAX_ENTRIES}",
                first.numrec
            );
        }
        let entries = read_entries(src, count)?;
        let last = read_header(src, false)?;
        if (last.genctr, last.numrec) == (first.genctr, first.numrec) {
            return Ok(DiscoveryLog {
                genctr: first.genctr,
                numrec: first.numrec,
                entries,
            });
        }
        debug!(
            "discovery log changed while reading (genctr {} -> {}), try {attempt}/{tries}",
            first.genctr, last.genctr
        );
    }
    Err(Error::invalid(
        "read a consistent discovery log",
        format!("it changed during each of {tries} reads"),
    ))
}

/// The discovery log of a controller, through the NVMe admin passthru ioctl on /dev/nvmeN.
pub struct ControllerLog {
    fd: OwnedFd,
    name: String,
}

impl ControllerLog {
    pub fn open(dev_root: &Path, name: &str) -> Result<ControllerLog> {
        if crate::sysfs::instance_of(name).is_none() {
            return Err(Error::invalid(
                "open a controller",
                format!(
                    "\"{}\" is not an nvmeN name",
                    crate::fabrics::escape_preview(name.as_bytes())
                ),
            ));
        }
        let path = dev_root.join(name);
        let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC;
        let fd = rustix::fs::open(&path, flags, rustix::fs::Mode::empty())
            .context(|| format!("open {}", path.display()))?;
        Ok(ControllerLog {
            fd,
            name: name.to_owned(),
        })
    }
}

impl LogPageSource for ControllerLog {
    fn read(&mut self, offset: u64, buf: &mut [u8], retain: bool) -> Result<()> {
        let what = || format!("read the discovery log of {} at byte {offset}", self.name);
        let done =
            crate::sys::nvme_get_log_page(self.fd.as_fd(), LID_DISCOVERY, retain, offset, buf)
                .context(what)?;
        done.map_err(|status| Error::invalid(what(), format!("NVMe status {:#06x}", status.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::NQN_MAX;
    use crate::fabrics::DISCOVERY_NQN;

    /// Captured from nvmet on kernel 6.12: 4 entries over loop, 5 over TCP (one referral).
    const REAL_LOOP: &[u8] = include_bytes!("../tests/data/dlog-loop.bin");
    const REAL_TCP: &[u8] = include_bytes!("../tests/data/dlog-tcp.bin");

    const SUB1: &str = "nqn.2024-01.io.example:capture1";

    fn entry(
        trtype: u8,
        adrfam: u8,
        subtype: u8,
        trsvcid: &[u8],
        subnqn: &[u8],
        traddr: &[u8],
    ) -> Vec<u8> {
        let mut e = vec![0u8; ENTRY_LEN];
        e[..4].copy_from_slice(&[trtype, adrfam, subtype, 4]);
        e[4..6].copy_from_slice(&7u16.to_le_bytes());
        e[6..8].copy_from_slice(&0xffffu16.to_le_bytes());
        e[8..10].copy_from_slice(&32u16.to_le_bytes());
        e[10..12].copy_from_slice(&3u16.to_le_bytes());
        e[32..32 + trsvcid.len()].copy_from_slice(trsvcid);
        e[256..256 + subnqn.len()].copy_from_slice(subnqn);
        e[512..512 + traddr.len()].copy_from_slice(traddr);
        e
    }

    fn tcp(subnqn: &[u8], traddr: &[u8]) -> Vec<u8> {
        entry(3, 1, 2, b"4420", subnqn, traddr)
    }

    fn page(genctr: u64, numrec: u64, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[..8].copy_from_slice(&genctr.to_le_bytes());
        p[8..16].copy_from_slice(&numrec.to_le_bytes());
        for e in entries {
            p.extend_from_slice(e);
        }
        p
    }

    /// A log in memory; bytes past the end read as zeros. The generation counter is bumped after
    /// each of the first `bumps` header reads, to simulate a log that changes while being read.
    struct MemLog {
        page: Vec<u8>,
        bumps: u32,
        reads: Vec<(u64, usize, bool)>,
    }

    impl MemLog {
        fn new(page: Vec<u8>) -> MemLog {
            MemLog {
                page,
                bumps: 0,
                reads: Vec::new(),
            }
        }
    }

    impl LogPageSource for MemLog {
        fn read(&mut self, offset: u64, buf: &mut [u8], retain: bool) -> Result<()> {
            self.reads.push((offset, buf.len(), retain));
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.page.get(offset as usize + i).copied().unwrap_or(0);
            }
            if offset == 0 && self.bumps > 0 {
                self.bumps -= 1;
                let g = le_u64(&self.page, 0).unwrap() + 1;
                self.page[..8].copy_from_slice(&g.to_le_bytes());
            }
            Ok(())
        }
    }

    #[test]
    fn header() {
        let h = parse_header(&page(0x0102_0304_0506_0708, 3, &[])).unwrap();
        assert_eq!(
            h,
            LogHeader {
                genctr: 0x0102_0304_0506_0708,
                numrec: 3,
                recfmt: 0
            }
        );
        assert!(
            parse_header(&[0u8; 17])
                .unwrap_err()
                .to_string()
                .contains("17 bytes")
        );
        assert_eq!(parse_header(&[0u8; 18]).unwrap().numrec, 0);
    }

    #[test]
    fn tsas_sectype_is_read_for_tcp_only() {
        let mut tls = tcp(b"nqn.2024-01.io.example:tls", b"10.0.0.1");
        tls[3] = 0b01; // TREQ: secure channel required
        tls[TSAS_AT] = 2; // SECTYPE: TLS 1.3
        let e = parse_entry(&tls).unwrap();
        assert_eq!((e.treq, e.tcp_sectype), (1, 2));
        // An RDMA entry's TSAS holds its QP type and the like, not a security type.
        let mut rdma = entry(1, 1, 2, b"4420", b"nqn.2024-01.io.example:r", b"10.0.0.2");
        rdma[TSAS_AT] = 2;
        assert_eq!(parse_entry(&rdma).unwrap().tcp_sectype, 0);
        assert_eq!(
            parse_entry(&tcp(b"nqn.2024-01.io.example:p", b"10.0.0.3"))
                .unwrap()
                .tcp_sectype,
            0
        );
    }

    #[test]
    fn real_tcp_page() {
        let log = read_discovery_log(&mut MemLog::new(REAL_TCP.to_vec()), 3).unwrap();
        assert_eq!((log.genctr, log.numrec, log.entries.len()), (10, 5, 5));
        let e: Vec<DiscoveryEntry> = log.entries.iter().map(|e| e.unwrap()).collect();
        let kinds: Vec<SubType> = e.iter().map(|e| e.subtype).collect();
        use SubType::*;
        assert_eq!(
            kinds,
            [
                CurrentDiscovery,
                NvmSubsystem,
                NvmSubsystem,
                NvmSubsystem,
                Referral
            ]
        );
        assert_eq!(e[0].subnqn.as_str(), DISCOVERY_NQN);
        assert_eq!(
            (
                e[1].subnqn.as_str(),
                e[1].traddr.as_str(),
                e[1].trsvcid.as_str()
            ),
            (SUB1, "127.0.0.1", "4420")
        );
        assert_eq!(
            (e[1].transport, e[1].adrfam, e[1].portid, e[1].cntlid),
            (Transport::Tcp, 1, 2, 0xffff)
        );
        assert!(e[1].sq_flow_control_disable_allowed() && !e[1].explicit_persistent_connection());
        assert_eq!((e[4].trsvcid.as_str(), e[4].portid), ("8009", 0));
        assert_eq!(
            e[4].to_addr().to_string(),
            "tcp traddr=127.0.0.1,trsvcid=8009"
        );
    }

    #[test]
    fn real_loop_page() {
        let log = read_discovery_log(&mut MemLog::new(REAL_LOOP.to_vec()), 3).unwrap();
        assert_eq!((log.genctr, log.entries.len()), (10, 4));
        let e: Vec<DiscoveryEntry> = log.entries.iter().map(|e| e.unwrap()).collect();
        assert_eq!(e[0].subtype, SubType::CurrentDiscovery);
        assert!(
            e[1..]
                .iter()
                .all(|e| e.subtype == SubType::NvmSubsystem && e.transport == Transport::Loop)
        );
        assert_eq!(
            (e[1].adrfam, e[1].traddr.as_str(), e[1].trsvcid.as_str()),
            (254, "1", "")
        );
        assert_eq!(e[3].subnqn.as_str(), "nqn.2024-01.io.example:capture3");
    }

    #[test]
    fn reads_in_chunks_with_rae_until_the_last_header() {
        let entries: Vec<Vec<u8>> = (0..5).map(|_| tcp(SUB1.as_bytes(), b"10.0.0.1")).collect();
        let mut src = MemLog::new(page(1, 5, &entries));
        read_discovery_log(&mut src, 1).unwrap();
        assert_eq!(
            src.reads,
            [
                (0, 20, true),
                (1024, 4096, true),
                (5120, 1024, true),
                (0, 20, false)
            ]
        );
    }

    #[test]
    fn empty_one_and_many() {
        let log = read_discovery_log(&mut MemLog::new(page(4, 0, &[])), 1).unwrap();
        assert_eq!((log.genctr, log.numrec, log.entries.len()), (4, 0, 0));
        let log = read_discovery_log(
            &mut MemLog::new(page(4, 1, &[tcp(SUB1.as_bytes(), b"10.0.0.1")])),
            1,
        )
        .unwrap();
        assert_eq!(
            log.entries.get(0).unwrap().unwrap().traddr.as_str(),
            "10.0.0.1"
        );
        let many: Vec<Vec<u8>> = (0..9)
            .map(|i| {
                tcp(
                    format!("nqn.2024-01.io.example:{i}").as_bytes(),
                    b"10.0.0.1",
                )
            })
            .collect();
        let log = read_discovery_log(&mut MemLog::new(page(4, 9, &many)), 1).unwrap();
        assert_eq!(log.entries.len(), 9);
        assert_eq!(
            log.entries.get(8).unwrap().unwrap().subnqn.as_str(),
            "nqn.2024-01.io.example:8"
        );
    }

    #[test]
    fn changed_once_is_read_again() {
        let mut src = MemLog::new(page(1, 1, &[tcp(SUB1.as_bytes(), b"10.0.0.1")]));
        src.bumps = 1;
        let log = read_discovery_log(&mut src, 3).unwrap();
        assert_eq!(log.genctr, 2);
        assert_eq!(src.reads.len(), 6);
    }

    #[test]
    fn always_changing_gives_up() {
        let mut src = MemLog::new(page(1, 1, &[tcp(SUB1.as_bytes(), b"10.0.0.1")]));
        src.bumps = u32::MAX;
        let e = read_discovery_log(&mut src, 3).unwrap_err();
        assert!(
            e.to_string().contains("changed during each of 3 reads"),
            "{e}"
        );
        assert_eq!(src.reads.len(), 9);
        // Zero tries still reads once.
        let mut src = MemLog::new(page(1, 0, &[]));
        assert!(read_discovery_log(&mut src, 0).is_ok());
    }

    #[test]
    fn huge_numrec_is_cut() {
        let mut src = MemLog::new(page(1, 1 << 40, &[tcp(SUB1.as_bytes(), b"10.0.0.1")]));
        let log = read_discovery_log(&mut src, 1).unwrap();
        assert_eq!((log.numrec, log.entries.len()), (1 << 40, MAX_ENTRIES));
        assert!(log.entries.get(0).unwrap().is_ok());
        assert_eq!(
            log.entries.get(1).unwrap().unwrap_err().problem,
            EntryProblem::UnknownTrtype(0)
        );
        assert_eq!(src.reads.len(), 2 + MAX_ENTRIES / 4);
    }

    #[test]
    fn source_errors_propagate() {
        struct Broken;
        impl LogPageSource for Broken {
            fn read(&mut self, _: u64, _: &mut [u8], _: bool) -> Result<()> {
                Err(Error::invalid(
                    "read the discovery log of nvme9",
                    "NVMe status 0x4002",
                ))
            }
        }
        assert!(
            read_discovery_log(&mut Broken, 3)
                .unwrap_err()
                .to_string()
                .contains("0x4002")
        );
    }

    #[test]
    fn entries_unpack_as_parsed_at_every_field_length() {
        let nqn = format!("nqn.2024-01.io.example:{}", "n".repeat(NQN_MAX - 23));
        let svc = "9".repeat(TRSVCID_MAX);
        let traddr = "1".repeat(TRADDR_MAX - 1);
        let raw = [
            entry(3, 1, 2, svc.as_bytes(), nqn.as_bytes(), traddr.as_bytes()),
            entry(254, 254, 1, b"", DISCOVERY_NQN.as_bytes(), b""),
            tcp(b"", b"10.0.0.1"),
            entry(4, 4, 3, b"", SUB1.as_bytes(), b"nn-0x1:pn-0x2"),
            tcp(SUB1.as_bytes(), b"fe80::1%eth0"),
        ];
        let parsed: Vec<_> = raw
            .iter()
            .enumerate()
            .map(|(i, r)| parse_entry_at(i, r))
            .collect();
        assert_eq!(parsed[0].unwrap().subnqn.as_str().len(), NQN_MAX);
        assert_eq!(parsed[0].unwrap().traddr.as_str().len(), TRADDR_MAX - 1);
        assert!(parsed[2].is_err());
        let mut packed = Entries::with_capacity(2);
        packed.push(parsed[0]);
        packed.extend(parsed[1..].iter().copied());
        assert_eq!(packed.len(), parsed.len());
        assert_eq!(
            packed.iter().collect::<Vec<_>>(),
            parsed,
            "all fields, in order"
        );
        assert_eq!(
            packed.get(2),
            Some(parsed[2]),
            "a refused entry keeps its place"
        );
        assert_eq!(packed.get(5), None);
        assert_eq!(parsed.iter().copied().collect::<Entries>(), packed);
        // What the packing is for: a full log is not held at the entries' fixed size.
        assert!(std::mem::size_of::<Packed>() * 8 <= std::mem::size_of::<DiscoveryEntry>());
    }

    #[test]
    fn hostile_entries_are_refused_one_by_one() {
        let long_nqn = vec![b'n'; 224];
        let full_traddr = vec![b'1'; 256];
        let entries = vec![
            tcp(b"nqn.x,hostnqn=evil", b"10.0.0.1"),
            tcp(SUB1.as_bytes(), b"10.0.0.1\nhostnqn=evil"),
            entry(7, 1, 2, b"4420", SUB1.as_bytes(), b"10.0.0.1"),
            tcp(b"nqn.\xff\xfe", b"10.0.0.1"),
            tcp(b"", b"10.0.0.1"),
            tcp(&long_nqn, b"10.0.0.1"),
            tcp(SUB1.as_bytes(), &full_traddr),
            entry(3, 4, 2, b"4420", SUB1.as_bytes(), b"10.0.0.1"),
            tcp(SUB1.as_bytes(), b"10.0.0.1=x"),
            entry(3, 1, 2, b"44 20", SUB1.as_bytes(), b"10.0.0.1"),
            entry(
                3,
                2,
                2,
                b"4420     ",
                b"   nqn.2024-01.io.example:padded   ",
                b"fe80::1%eth0\0junk,=",
            ),
        ];
        let log = read_discovery_log(&mut MemLog::new(page(1, entries.len() as u64, &entries)), 1)
            .unwrap();
        let got: Vec<String> = log
            .entries
            .iter()
            .map(|e| match e {
                Ok(_) => "ok".into(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(
            got,
            [
                "discovery log entry 0: subnqn \"nqn.x,hostnqn=evil\" contains ','",
                "discovery log entry 1: traddr \"10.0.0.1\\nhostnqn=evil\" contains '\\n'",
                "discovery log entry 2: trtype 7 is not a known transport",
                "discovery log entry 3: subnqn \"nqn.\\xff\\xfe\" contains the non-printable or non-ASCII byte 0xff",
                "discovery log entry 4: subnqn is empty",
                &format!(
                    "discovery log entry 5: subnqn \"{}...\" is 224 bytes long, at most 223 allowed",
                    "n".repeat(53)
                ),
                &format!(
                    "discovery log entry 6: traddr \"{}...\" is 256 bytes long, at most 255 allowed",
                    "1".repeat(53)
                ),
                "discovery log entry 7: adrfam 4 does not fit the transport",
                "discovery log entry 8: traddr \"10.0.0.1=x\" contains '='",
                "ok",
                "ok",
            ]
        );
        let inner_space = log.entries.get(9).unwrap().unwrap();
        assert_eq!(inner_space.trsvcid.as_str(), "44 20");
        let padded = log.entries.get(10).unwrap().unwrap();
        assert_eq!(padded.subnqn.as_str(), "nqn.2024-01.io.example:padded");
        assert_eq!(
            (padded.trsvcid.as_str(), padded.traddr.as_str()),
            ("4420", "fe80::1%eth0")
        );
    }

    #[test]
    fn single_entries() {
        assert_eq!(
            parse_entry(&[3u8; 100]).unwrap_err().problem,
            EntryProblem::Short(100)
        );
        let e = parse_entry(&entry(
            2,
            4,
            1,
            b"none",
            DISCOVERY_NQN.as_bytes(),
            b"nn-0x1:pn-0x2",
        ))
        .unwrap();
        assert_eq!((e.transport, e.subtype), (Transport::Fc, SubType::Referral));
        assert_eq!(e.to_addr().to_string(), "fc traddr=nn-0x1:pn-0x2");
        assert!(
            e.duplicate_returned_info()
                && e.explicit_persistent_connection()
                && !e.no_cdc_connectivity()
        );
        assert_eq!(
            parse_entry(&entry(3, 1, 9, b"", SUB1.as_bytes(), b"a"))
                .unwrap()
                .subtype,
            SubType::Unknown(9)
        );
        assert_eq!(
            parse_entry_at(5, &entry(0, 0, 2, b"", b"", b""))
                .unwrap_err()
                .index,
            5
        );
    }

    #[test]
    fn controller_log_refuses_bad_names() {
        let dir = std::env::temp_dir();
        for bad in ["../nvme0", "nvme0n1", "nvme-fabrics"] {
            assert!(ControllerLog::open(&dir, bad).is_err(), "{bad}");
        }
        let e = ControllerLog::open(&dir.join("nvme-monitor-no-such-dir"), "nvme0")
            .err()
            .unwrap();
        assert!(e.to_string().contains("nvme0"), "{e}");
    }
}
