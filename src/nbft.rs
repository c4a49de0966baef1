//! The ACPI NBFT (NVMe Boot Firmware Table): what the firmware booted from over NVMe/TCP.
//!
//! [`parse`] is a pure function over the table's bytes. It checks every offset and length against
//! the table (and heap objects against the heap) before reading, so no input makes it panic, and a
//! table that cannot be trusted is refused whole with an [`NbftError`] naming the structure and the
//! field. A descriptor whose Valid flag is clear is reserved by the specification and skipped, as
//! is a HFI or SSNS of a transport other than TCP (the only one the specification defines).
//!
//! Two rules differ from libnvme on purpose, because libnvme refuses tables the specification
//! allows: an SSNS whose Secondary HFI Associations object is empty is reached through its primary
//! HFI alone, and a discovery descriptor without an NQN means the well-known discovery NQN.
//!
//! # Layout
//! All little-endian; offsets from byte 0 of the table. A *heap object* is `u32 offset, u16 length`
//! and must lie inside the heap (`heap_offset .. heap_offset + heap_length`); length 0 means absent.
//! - Header (64 bytes at 0): signature `NBFT`, u32 length @4, u8 major revision @8 (must be 1),
//!   u8 checksum @9 (the table's bytes sum to 0), u32 heap offset @36, u32 heap length @40, heap
//!   object driver device path signature @44, u8 minor revision @50.
//! - Control (at 64): id 1, u8 flags @6 (bit 0 valid: clear means no boot information), heap object
//!   host descriptor @8; list headers `u32 offset, u16 entry length, u8 version, u8 count` for HFIs
//!   @16, SSNS @24, security profiles @32, discovery @40.
//! - Host (32): id 2, flags @1, host ID @2 (16 bytes, EFI GUID byte order), heap object host NQN @18.
//! - HFI (32): id 3, u8 index @1, flags @2, u8 transport @3 (3: TCP), heap object transport info @16
//!   → HFI TCP info (id 7, version 1): u16 HFI index @4, flags @6, u32 PCI SBDF @7, MAC @11, u16 VLAN
//!   @17, u8 IP origin @19, IP @20, u8 prefix @36, gateway @37, u16 route metric @54, DNS @56 and
//!   @72, DHCP server @88, heap object host name @104. Addresses are 16 bytes, IPv4 as IPv4-mapped.
//! - SSNS (128): id 4, u16 index @1, u16 flags @3, u8 transport @5, u16 transport flags @6, u8
//!   primary discovery controller index @8, heap objects transport address @10 (a binary IP) and
//!   service ID @16 (text), u16 port ID @22, u32 NSID @24, u8 NID type @28, NID @29, u8 security
//!   profile index @45, u8 primary HFI index @46, heap objects secondary HFI associations @48 (one
//!   HFI index a byte), subsystem NQN @54, extended info @60 (id 9, version 1, u16 SSNS index @2,
//!   u32 flags @4, u16 controller ID @8, u16 ASQSZ @10, heap object DHCP root path @12).
//! - Security profile (64): id 5, u8 index @1, u16 flags @2, u8 secret type @4, heap objects secure
//!   channel algorithms @6, authentication protocols @12, cipher suites @18, DH groups @24, secure
//!   hash functions @30, secret key path @36.
//! - Discovery (32): id 6, flags @1, u8 index @2, u8 HFI index @3, u8 security profile index @4,
//!   heap objects URI @6 and NQN @12.
//!
//! Indexes start at 1; 0 means none.
//!
//! # References
//! - NVM Express Boot Specification 1.0, section 3 (the NBFT)
//! - ACPI 6.5 section 5.2.6 (system description table header, checksum)

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The NQN a discovery descriptor without one means (NVMe Base Specification, section 4.7).
pub const WELL_KNOWN_DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// The transport type of NVMe/TCP in HFI and SSNS descriptors (NVMe Boot Specification Figure 4).
pub const TRTYPE_TCP: u8 = 3;

const HEADER_LEN: usize = 64;
const CONTROL_OFFSET: usize = 64;
/// Header plus control descriptor: the least a table can be.
const MIN_TABLE_LEN: usize = 128;

/// Structure IDs (NVMe Boot Specification Figure 3).
const ID_CONTROL: u8 = 1;
const ID_HOST: u8 = 2;
const ID_HFI: u8 = 3;
const ID_SSNS: u8 = 4;
const ID_SECURITY: u8 = 5;
const ID_DISCOVERY: u8 = 6;
const ID_HFI_TRINFO: u8 = 7;
const ID_SSNS_EXT_INFO: u8 = 9;

/// Bytes read from each descriptor: a list entry or heap object must be at least this long.
const HOST_READ: usize = 24;
const HFI_READ: usize = 22;
const HFI_TCP_READ: usize = 110;
const SSNS_READ: usize = 66;
const SSNS_EXT_READ: usize = 18;
const SECURITY_READ: usize = 42;
const DISCOVERY_READ: usize = 18;

/// A parsed table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nbft {
    /// The header's length: the bytes that make up the table.
    pub length: u32,
    pub major_revision: u8,
    pub minor_revision: u8,
    /// The UEFI device path of the boot driver (header's Driver Device Path Signature), if given.
    pub driver_dev_path: Option<String>,
    /// `None` when the control descriptor's Valid flag is clear: the firmware booted nothing.
    pub host: Option<Host>,
    pub hfis: Vec<Hfi>,
    pub ssns: Vec<Ssns>,
    pub security: Vec<Security>,
    pub discovery: Vec<DiscoveryDescriptor>,
}

impl Nbft {
    pub fn hfi(&self, index: u8) -> Option<&Hfi> {
        self.hfis.iter().find(|h| h.index == index)
    }
}

/// Primary Administrative Host Flag (host descriptor flags bits 3-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryAdmin {
    NotIndicated,
    Unselected,
    Selected,
    Reserved,
}

impl PrimaryAdmin {
    fn from_bits(bits: u8) -> PrimaryAdmin {
        match bits & 3 {
            0 => PrimaryAdmin::NotIndicated,
            1 => PrimaryAdmin::Unselected,
            2 => PrimaryAdmin::Selected,
            _ => PrimaryAdmin::Reserved,
        }
    }

    /// The two-bit field's value.
    pub fn value(self) -> u8 {
        self as u8
    }
}

/// The host descriptor: who the firmware connected as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// As stored: EFI GUID byte order (the first three groups little-endian).
    pub id: [u8; 16],
    pub nqn: Option<String>,
    pub host_id_configured: bool,
    pub host_nqn_configured: bool,
    pub primary_admin: PrimaryAdmin,
}

/// A host fabric interface: a NIC the firmware used, with its IP setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hfi {
    pub index: u8,
    pub tcp: HfiTcpInfo,
}

/// The HFI transport info for NVMe/TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfiTcpInfo {
    /// PCI Express routing ID: segment << 16 | bus << 8 | device << 3 | function.
    pub pci_sbdf: u32,
    pub mac: [u8; 6],
    /// 0: no VLAN.
    pub vlan: u16,
    /// NL_PREFIX_ORIGIN: 1 manual, 3 DHCP, 4 router advertisement...
    pub ip_origin: u8,
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    pub route_metric: u16,
    pub primary_dns: IpAddr,
    pub secondary_dns: IpAddr,
    /// Only when `dhcp_override` is set; the field is reserved otherwise.
    pub dhcp_server: Option<IpAddr>,
    pub host_name: Option<String>,
    /// Global Route flag: the firmware made this interface the default route.
    pub global_route: bool,
    /// DHCP Override flag: the configuration came from DHCP, not from the setup screen.
    pub dhcp_override: bool,
}

/// Unavailable Namespace flag (SSNS flags bits 7-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    NotIndicated,
    Available,
    Unavailable,
    Reserved,
}

/// A subsystem namespace the firmware booted from (or was configured for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssns {
    pub index: u16,
    pub traddr: IpAddr,
    pub trsvcid: String,
    pub subsys_port_id: u16,
    pub nsid: u32,
    pub nid_type: u8,
    pub nid: [u8; 16],
    pub subsys_nqn: String,
    /// The HFIs to reach it through, primary first, each once, each one in [`Nbft::hfis`].
    pub hfis: Vec<u8>,
    /// A discovery descriptor in [`Nbft::discovery`], if one was used to find it.
    pub discovery: Option<u8>,
    /// A security profile in [`Nbft::security`], when the Use Security flag is set.
    pub security: Option<u8>,
    pub non_bootable: bool,
    pub dhcp_root_path_override: bool,
    pub separate_discovery_ctrl: bool,
    pub discovered: bool,
    pub availability: Availability,
    pub pdu_header_digest: bool,
    pub data_digest: bool,
    pub extended: Option<SsnsExtendedInfo>,
}

impl Ssns {
    /// The firmware could not reach it: failing to connect it is no error.
    pub fn unavailable(&self) -> bool {
        self.availability == Availability::Unavailable
    }
}

/// The SSNS extended information descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsnsExtendedInfo {
    pub cntlid: u16,
    pub asqsz: u16,
    /// ASQSZ was set by the administrator, not found by discovery or assumed.
    pub admin_asqsz: bool,
    pub dhcp_root_path: Option<String>,
}

/// A security profile: what an SSNS or discovery controller needs to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub index: u8,
    /// The flags word as stored (in-band authentication, secure channel, policy list bits).
    pub flags: u16,
    pub secret_type: u8,
    pub secure_channel_algorithms: Vec<u8>,
    pub auth_protocols: Vec<u8>,
    pub cipher_suites: Vec<u8>,
    pub dh_groups: Vec<u8>,
    pub secure_hash_functions: Vec<u8>,
    pub secret_keypath: Option<String>,
}

/// A discovery controller the firmware used or was told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryDescriptor {
    pub index: u8,
    /// An HFI in [`Nbft::hfis`].
    pub hfi: Option<u8>,
    /// A profile in [`Nbft::security`].
    pub security: Option<u8>,
    /// `nvme+tcp://ADDR:PORT/`, as stored.
    pub uri: String,
    /// [`WELL_KNOWN_DISCOVERY_NQN`] when the table gives none.
    pub nqn: String,
}

/// Where in the table a problem is: a structure, and for list entries their 1-based position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    Header,
    Control,
    Host,
    Hfi(usize),
    HfiTransportInfo(usize),
    Ssns(usize),
    SsnsExtendedInfo(usize),
    Security(usize),
    Discovery(usize),
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Structure::Header => f.write_str("header"),
            Structure::Control => f.write_str("control descriptor"),
            Structure::Host => f.write_str("host descriptor"),
            Structure::Hfi(n) => write!(f, "HFI descriptor {n}"),
            Structure::HfiTransportInfo(n) => write!(f, "HFI descriptor {n} transport info"),
            Structure::Ssns(n) => write!(f, "SSNS descriptor {n}"),
            Structure::SsnsExtendedInfo(n) => write!(f, "SSNS descriptor {n} extended info"),
            Structure::Security(n) => write!(f, "security profile descriptor {n}"),
            Structure::Discovery(n) => write!(f, "discovery descriptor {n}"),
        }
    }
}

/// Why a table was refused: the structure, the field, what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbftError {
    pub structure: Structure,
    pub field: &'static str,
    pub problem: String,
}

impl fmt::Display for NbftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.structure, self.field, self.problem)
    }
}

impl std::error::Error for NbftError {}

fn err<T>(
    structure: Structure,
    field: &'static str,
    problem: impl Into<String>,
) -> Result<T, NbftError> {
    Err(NbftError {
        structure,
        field,
        problem: problem.into(),
    })
}

/// A window on the table: every read is bounds-checked, out of range reads as an error.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    data: &'a [u8],
    at: Structure,
}

impl<'a> Bytes<'a> {
    fn u8(&self, off: usize, field: &'static str) -> Result<u8, NbftError> {
        match self.data.get(off) {
            Some(b) => Ok(*b),
            None => err(self.at, field, "beyond the end of the structure"),
        }
    }

    fn array<const N: usize>(&self, off: usize, field: &'static str) -> Result<[u8; N], NbftError> {
        let slice = off
            .checked_add(N)
            .and_then(|end| self.data.get(off..end))
            .and_then(|s| <[u8; N]>::try_from(s).ok());
        match slice {
            Some(a) => Ok(a),
            None => err(self.at, field, "beyond the end of the structure"),
        }
    }

    fn u16(&self, off: usize, field: &'static str) -> Result<u16, NbftError> {
        self.array::<2>(off, field).map(u16::from_le_bytes)
    }

    fn u32(&self, off: usize, field: &'static str) -> Result<u32, NbftError> {
        self.array::<4>(off, field).map(u32::from_le_bytes)
    }

    fn heap_obj(&self, off: usize, field: &'static str) -> Result<HeapObj, NbftError> {
        Ok(HeapObj {
            offset: self.u32(off, field)?,
            length: self.u16(off + 4, field)?,
            at: self.at,
            field,
        })
    }

    /// A 16-byte address field.
    fn ip(&self, off: usize, field: &'static str) -> Result<IpAddr, NbftError> {
        self.array::<16>(off, field).map(ip_from_bytes)
    }
}

/// A heap object reference, with where it came from for error messages.
#[derive(Clone, Copy)]
struct HeapObj {
    offset: u32,
    length: u16,
    at: Structure,
    field: &'static str,
}

/// The table (cut to the header's length) and where its heap is.
struct Table<'a> {
    data: &'a [u8],
    heap_start: u64,
    heap_end: u64,
}

impl<'a> Table<'a> {
    /// The object's bytes, `None` when its length is 0, an error when it is not all in the heap.
    fn heap(&self, obj: HeapObj) -> Result<Option<&'a [u8]>, NbftError> {
        if obj.length == 0 {
            return Ok(None);
        }
        let start = u64::from(obj.offset);
        let end = start + u64::from(obj.length);
        if start < self.heap_start || end > self.heap_end {
            return err(
                obj.at,
                obj.field,
                format!(
                    "heap object at {:#x}, {} bytes, is outside the heap ({:#x} to {:#x})",
                    obj.offset, obj.length, self.heap_start, self.heap_end
                ),
            );
        }
        // The heap is inside the table (checked in `parse`), so the range is too.
        match usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| self.data.get(s..e))
        {
            Some(b) => Ok(Some(b)),
            None => err(obj.at, obj.field, "heap object outside the table"),
        }
    }

    /// A heap string. Its length excludes the NUL the specification puts after it; a NUL inside
    /// ends it early (firmware pads fields), which libnvme accepts too.
    fn string(&self, obj: HeapObj) -> Result<Option<String>, NbftError> {
        let Some(bytes) = self.heap(obj)? else {
            return Ok(None);
        };
        let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
        match std::str::from_utf8(text) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => err(obj.at, obj.field, "not UTF-8 text"),
        }
    }

    /// A descriptor the heap object points to, at least `min` bytes long.
    fn descriptor(
        &self,
        obj: HeapObj,
        at: Structure,
        min: usize,
    ) -> Result<Option<Bytes<'a>>, NbftError> {
        let Some(data) = self.heap(obj)? else {
            return Ok(None);
        };
        if data.len() < min {
            return err(
                obj.at,
                obj.field,
                format!("{} bytes, too short for a {at} ({min})", data.len()),
            );
        }
        Ok(Some(Bytes { data, at }))
    }
}

/// IPv4-mapped addresses (`::ffff:a.b.c.d`) are IPv4, as the specification stores IPv4.
fn ip_from_bytes(b: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(b);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// A transport address heap object: 16 bytes, or 4 for a bare IPv4 address.
fn traddr(table: &Table<'_>, obj: HeapObj) -> Result<IpAddr, NbftError> {
    match table.heap(obj)? {
        None => err(obj.at, obj.field, "missing"),
        Some(b) => {
            if let Ok(a) = <[u8; 16]>::try_from(b) {
                Ok(ip_from_bytes(a))
            } else if let Ok(a) = <[u8; 4]>::try_from(b) {
                Ok(IpAddr::V4(Ipv4Addr::from(a)))
            } else {
                err(
                    obj.at,
                    obj.field,
                    format!("{} bytes, not an IP address (16)", b.len()),
                )
            }
        }
    }
}

/// One descriptor list from the control descriptor: where each entry is.
struct List {
    offset: u32,
    entry_len: u16,
    count: u8,
}

fn list(control: &Bytes<'_>, off: usize, field: &'static str) -> Result<List, NbftError> {
    Ok(List {
        offset: control.u32(off, field)?,
        entry_len: control.u16(off + 4, field)?,
        count: control.u8(off + 7, field)?,
    })
}

impl List {
    /// The entries, each checked to lie in the table and to hold the `min` bytes we read.
    fn entries<'a>(
        &self,
        data: &'a [u8],
        field: &'static str,
        min: usize,
        at: fn(usize) -> Structure,
    ) -> Result<Vec<Bytes<'a>>, NbftError> {
        if self.count == 0 {
            return Ok(Vec::new());
        }
        let len = usize::from(self.entry_len);
        if len < min {
            return err(
                Structure::Control,
                field,
                format!("entry length {len}, a descriptor has at least {min} bytes"),
            );
        }
        let end = u64::from(self.offset) + u64::from(self.count) * len as u64;
        if u64::from(self.offset) < HEADER_LEN as u64 || end > data.len() as u64 {
            return err(
                Structure::Control,
                field,
                format!(
                    "{} entries of {len} bytes at {:#x} do not fit in the table ({} bytes)",
                    self.count,
                    self.offset,
                    data.len()
                ),
            );
        }
        let mut out = Vec::with_capacity(usize::from(self.count));
        for i in 0..usize::from(self.count) {
            let start = self.offset as usize + i * len;
            match data.get(start..start + len) {
                Some(d) => out.push(Bytes {
                    data: d,
                    at: at(i + 1),
                }),
                None => return err(Structure::Control, field, "entry outside the table"),
            }
        }
        Ok(out)
    }
}

/// Parse a whole NBFT as read from `/sys/firmware/acpi/tables/NBFT*`.
pub fn parse(bytes: &[u8]) -> Result<Nbft, NbftError> {
    use Structure as S;
    if bytes.len() < MIN_TABLE_LEN {
        return err(
            S::Header,
            "length",
            format!(
                "{} bytes, a table has at least {MIN_TABLE_LEN}",
                bytes.len()
            ),
        );
    }
    let whole = Bytes {
        data: bytes,
        at: S::Header,
    };
    if bytes.get(0..4) != Some(b"NBFT".as_slice()) {
        return err(S::Header, "signature", "not NBFT");
    }
    let length = whole.u32(4, "length")?;
    if length as usize > bytes.len() || (length as usize) < MIN_TABLE_LEN {
        return err(
            S::Header,
            "length",
            format!("{length}, but the table has {} bytes", bytes.len()),
        );
    }
    // Everything from here on is inside the header's length; what follows it is not the table.
    let data = bytes.get(..length as usize).unwrap_or(bytes);
    let sum = data.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if sum != 0 {
        return err(
            S::Header,
            "checksum",
            format!("the bytes sum to {sum:#04x}, not 0"),
        );
    }
    let header = Bytes {
        data,
        at: S::Header,
    };
    let major_revision = header.u8(8, "major revision")?;
    if major_revision != 1 {
        return err(
            S::Header,
            "major revision",
            format!("{major_revision}, only 1 is known"),
        );
    }
    // A minor revision stays compatible (1.1 added fields in reserved space), so any is read.
    let minor_revision = header.u8(50, "minor revision")?;
    let heap_offset = header.u32(36, "heap offset")?;
    let heap_length = header.u32(40, "heap length")?;
    let heap_end = u64::from(heap_offset) + u64::from(heap_length);
    if heap_end > u64::from(length) {
        return err(
            S::Header,
            "heap offset",
            format!(
                "heap at {heap_offset:#x}, {heap_length} bytes, ends beyond the table ({length} bytes)"
            ),
        );
    }
    let table = Table {
        data,
        heap_start: u64::from(heap_offset),
        heap_end,
    };
    let driver_dev_path = table.string(header.heap_obj(44, "driver device path signature")?)?;
    let mut nbft = Nbft {
        length,
        major_revision,
        minor_revision,
        driver_dev_path,
        host: None,
        hfis: Vec::new(),
        ssns: Vec::new(),
        security: Vec::new(),
        discovery: Vec::new(),
    };

    let control = Bytes {
        data: data.get(CONTROL_OFFSET..).unwrap_or_default(),
        at: S::Control,
    };
    // Clear: the firmware has no boot information to hand over; the rest is reserved.
    if control.u8(6, "flags")? & 1 == 0 {
        return Ok(nbft);
    }
    if control.u8(0, "structure ID")? != ID_CONTROL {
        return err(S::Control, "structure ID", "not 1");
    }
    nbft.host = Some(host(&table, &control)?);

    let hfi_list = list(&control, 16, "HFI descriptor list")?;
    for d in hfi_list.entries(data, "HFI descriptor list", HFI_READ, S::Hfi)? {
        if let Some(h) = hfi(&table, &d)? {
            nbft.hfis.push(h);
        }
    }
    let sec_list = list(&control, 32, "security profile descriptor list")?;
    for d in sec_list.entries(
        data,
        "security profile descriptor list",
        SECURITY_READ,
        S::Security,
    )? {
        if let Some(s) = security(&table, &d)? {
            nbft.security.push(s);
        }
    }
    let disc_list = list(&control, 40, "discovery descriptor list")?;
    for d in disc_list.entries(
        data,
        "discovery descriptor list",
        DISCOVERY_READ,
        S::Discovery,
    )? {
        if let Some(x) = discovery(&table, &d, &nbft)? {
            nbft.discovery.push(x);
        }
    }
    // Last: an SSNS names HFIs, discovery descriptors and security profiles.
    let ssns_list = list(&control, 24, "SSNS descriptor list")?;
    for (i, d) in ssns_list
        .entries(data, "SSNS descriptor list", SSNS_READ, S::Ssns)?
        .iter()
        .enumerate()
    {
        if let Some(s) = ssns(&table, d, i + 1, &nbft)? {
            nbft.ssns.push(s);
        }
    }
    Ok(nbft)
}

fn host(table: &Table<'_>, control: &Bytes<'_>) -> Result<Host, NbftError> {
    use Structure as S;
    let obj = control.heap_obj(8, "host descriptor")?;
    // The host descriptor is referenced like a heap object but firmware places it before the heap
    // (all our tables do), so it is checked against the table, not the heap.
    let len = if obj.length == 0 {
        32
    } else {
        usize::from(obj.length)
    };
    if len < HOST_READ {
        return err(
            S::Control,
            "host descriptor",
            format!("{len} bytes, at least {HOST_READ}"),
        );
    }
    let start = obj.offset as usize;
    let Some(data) = start
        .checked_add(len)
        .and_then(|end| table.data.get(start..end))
    else {
        return err(
            S::Control,
            "host descriptor",
            format!("at {:#x}, {len} bytes, outside the table", obj.offset),
        );
    };
    let h = Bytes { data, at: S::Host };
    if h.u8(0, "structure ID")? != ID_HOST {
        return err(S::Host, "structure ID", "not 2");
    }
    let flags = h.u8(1, "flags")?;
    if flags & 1 == 0 {
        return err(S::Host, "flags", "not valid");
    }
    Ok(Host {
        id: h.array::<16>(2, "host ID")?,
        nqn: table.string(h.heap_obj(18, "host NQN")?)?,
        host_id_configured: flags & 0x02 != 0,
        host_nqn_configured: flags & 0x04 != 0,
        primary_admin: PrimaryAdmin::from_bits(flags >> 3),
    })
}

fn hfi(table: &Table<'_>, d: &Bytes<'_>) -> Result<Option<Hfi>, NbftError> {
    let n = match d.at {
        Structure::Hfi(n) => n,
        _ => 0,
    };
    if d.u8(2, "flags")? & 1 == 0 {
        return Ok(None);
    }
    if d.u8(0, "structure ID")? != ID_HFI {
        return err(d.at, "structure ID", "not 3");
    }
    let index = d.u8(1, "index")?;
    if d.u8(3, "transport type")? != TRTYPE_TCP {
        return Ok(None);
    }
    let obj = d.heap_obj(16, "transport info")?;
    let Some(t) = table.descriptor(obj, Structure::HfiTransportInfo(n), HFI_TCP_READ)? else {
        return err(d.at, "transport info", "missing");
    };
    let flags = t.u8(6, "flags")?;
    if flags & 1 == 0 {
        return Ok(None);
    }
    if t.u8(0, "structure ID")? != ID_HFI_TRINFO {
        return err(t.at, "structure ID", "not 7");
    }
    let version = t.u8(1, "version")?;
    if version != 1 {
        return err(t.at, "version", format!("{version}, only 1 is known"));
    }
    let dhcp_override = flags & 0x04 != 0;
    Ok(Some(Hfi {
        index,
        tcp: HfiTcpInfo {
            pci_sbdf: t.u32(7, "PCI SBDF")?,
            mac: t.array::<6>(11, "MAC address")?,
            vlan: t.u16(17, "VLAN")?,
            ip_origin: t.u8(19, "IP origin")?,
            ip: t.ip(20, "IP address")?,
            prefix: t.u8(36, "subnet mask prefix")?,
            gateway: t.ip(37, "IP gateway")?,
            route_metric: t.u16(54, "route metric")?,
            primary_dns: t.ip(56, "primary DNS")?,
            secondary_dns: t.ip(72, "secondary DNS")?,
            dhcp_server: if dhcp_override {
                Some(t.ip(88, "DHCP server")?)
            } else {
                None
            },
            host_name: table.string(t.heap_obj(104, "host name")?)?,
            global_route: flags & 0x02 != 0,
            dhcp_override,
        },
    }))
}

fn security(table: &Table<'_>, d: &Bytes<'_>) -> Result<Option<Security>, NbftError> {
    let flags = d.u16(2, "flags")?;
    if flags & 1 == 0 {
        return Ok(None);
    }
    if d.u8(0, "structure ID")? != ID_SECURITY {
        return err(d.at, "structure ID", "not 5");
    }
    let list = |off, field| -> Result<Vec<u8>, NbftError> {
        Ok(table
            .heap(d.heap_obj(off, field)?)?
            .unwrap_or_default()
            .to_vec())
    };
    Ok(Some(Security {
        index: d.u8(1, "index")?,
        flags,
        secret_type: d.u8(4, "secret type")?,
        secure_channel_algorithms: list(6, "secure channel algorithms")?,
        auth_protocols: list(12, "authentication protocols")?,
        cipher_suites: list(18, "cipher suites")?,
        dh_groups: list(24, "DH groups")?,
        secure_hash_functions: list(30, "secure hash functions")?,
        secret_keypath: table.string(d.heap_obj(36, "secret keypath")?)?,
    }))
}

fn discovery(
    table: &Table<'_>,
    d: &Bytes<'_>,
    nbft: &Nbft,
) -> Result<Option<DiscoveryDescriptor>, NbftError> {
    if d.u8(1, "flags")? & 1 == 0 {
        return Ok(None);
    }
    if d.u8(0, "structure ID")? != ID_DISCOVERY {
        return err(d.at, "structure ID", "not 6");
    }
    let hfi = d.u8(3, "HFI index")?;
    let sec = d.u8(4, "security profile index")?;
    let Some(uri) = table
        .string(d.heap_obj(6, "URI")?)?
        .filter(|u| !u.is_empty())
    else {
        return err(d.at, "URI", "missing");
    };
    // Empty: the specification says to use the well-known NQN (libnvme 1.11 drops the descriptor).
    let nqn = table
        .string(d.heap_obj(12, "NQN")?)?
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| WELL_KNOWN_DISCOVERY_NQN.to_owned());
    Ok(Some(DiscoveryDescriptor {
        index: d.u8(2, "index")?,
        hfi: nbft.hfi(hfi).map(|h| h.index),
        security: nbft
            .security
            .iter()
            .find(|s| s.index == sec && sec != 0)
            .map(|s| s.index),
        uri,
        nqn,
    }))
}

fn ssns(
    table: &Table<'_>,
    d: &Bytes<'_>,
    n: usize,
    nbft: &Nbft,
) -> Result<Option<Ssns>, NbftError> {
    let flags = d.u16(3, "flags")?;
    if flags & 1 == 0 {
        return Ok(None);
    }
    if d.u8(0, "structure ID")? != ID_SSNS {
        return err(d.at, "structure ID", "not 4");
    }
    if d.u8(5, "transport type")? != TRTYPE_TCP {
        return Ok(None);
    }
    let index = d.u16(1, "index")?;
    let trflags = d.u16(6, "transport flags")?;
    let traddr = traddr(table, d.heap_obj(10, "transport address")?)?;
    let Some(trsvcid) = table
        .string(d.heap_obj(16, "transport service ID")?)?
        .filter(|s| !s.is_empty())
    else {
        return err(d.at, "transport service ID", "missing");
    };
    let Some(subsys_nqn) = table
        .string(d.heap_obj(54, "subsystem NQN")?)?
        .filter(|s| !s.is_empty())
    else {
        return err(d.at, "subsystem NQN", "missing");
    };
    let primary = d.u8(46, "primary HFI index")?;
    if nbft.hfi(primary).is_none() {
        return err(
            d.at,
            "primary HFI index",
            format!("{primary} names no valid TCP HFI descriptor"),
        );
    }
    // The firmware usually repeats the primary here; an empty list (libnvme refuses it) means the
    // primary alone. An index naming no HFI cannot be used and is dropped, as libnvme does.
    let secondary = table.heap(d.heap_obj(48, "secondary HFI associations")?)?;
    let mut hfis = vec![primary];
    for &i in secondary.unwrap_or_default() {
        if nbft.hfi(i).is_some() && !hfis.contains(&i) {
            hfis.push(i);
        }
    }
    let disc = d.u8(8, "primary discovery controller index")?;
    let sec = d.u8(45, "security profile index")?;
    let use_security = flags & 0x0004 != 0;
    let extended = if flags & 0x0010 != 0 {
        let obj = d.heap_obj(60, "extended info")?;
        match table.descriptor(obj, Structure::SsnsExtendedInfo(n), SSNS_EXT_READ)? {
            Some(e) => ssns_extended(table, &e, index)?,
            None => return err(d.at, "extended info", "flagged in use, but missing"),
        }
    } else {
        None
    };
    Ok(Some(Ssns {
        index,
        traddr,
        trsvcid,
        subsys_port_id: d.u16(22, "subsystem port ID")?,
        nsid: d.u32(24, "NSID")?,
        nid_type: d.u8(28, "NID type")?,
        nid: d.array::<16>(29, "NID")?,
        subsys_nqn,
        hfis,
        discovery: nbft
            .discovery
            .iter()
            .find(|x| x.index == disc && disc != 0)
            .map(|x| x.index),
        security: nbft
            .security
            .iter()
            .find(|s| use_security && s.index == sec && sec != 0)
            .map(|s| s.index),
        non_bootable: flags & 0x0002 != 0,
        dhcp_root_path_override: flags & 0x0008 != 0,
        separate_discovery_ctrl: flags & 0x0020 != 0,
        discovered: flags & 0x0040 != 0,
        availability: match flags & 0x0180 {
            0x0000 => Availability::NotIndicated,
            0x0080 => Availability::Available,
            0x0100 => Availability::Unavailable,
            _ => Availability::Reserved,
        },
        pdu_header_digest: trflags & 0x0002 != 0,
        data_digest: trflags & 0x0004 != 0,
        extended,
    }))
}

fn ssns_extended(
    table: &Table<'_>,
    e: &Bytes<'_>,
    ssns_index: u16,
) -> Result<Option<SsnsExtendedInfo>, NbftError> {
    if e.u8(0, "structure ID")? != ID_SSNS_EXT_INFO {
        return err(e.at, "structure ID", "not 9");
    }
    let version = e.u8(1, "version")?;
    if version != 1 {
        return err(e.at, "version", format!("{version}, only 1 is known"));
    }
    let index = e.u16(2, "SSNS index")?;
    if index != ssns_index {
        return err(
            e.at,
            "SSNS index",
            format!("{index}, but the SSNS is {ssns_index}"),
        );
    }
    let flags = e.u32(4, "flags")?;
    if flags & 1 == 0 {
        return Ok(None);
    }
    Ok(Some(SsnsExtendedInfo {
        cntlid: e.u16(8, "controller ID")?,
        asqsz: e.u16(10, "ASQSZ")?,
        admin_asqsz: flags & 0x02 != 0,
        dhcp_root_path: table.string(e.heap_obj(12, "DHCP root path")?)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DHCP: &[u8] = include_bytes!("../tests/data/nbft/tables/NBFT-dhcp-ipv4");
    /// In NBFT-dhcp-ipv4: the SSNS and discovery descriptors, and the HFI's transport info.
    const SSNS: usize = 0xc0;
    const DISC: usize = 0x140;
    const HFI_TCP: usize = 0x1fb;

    /// The table with `edit` applied and the checksum made right again.
    fn patched(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut t = DHCP.to_vec();
        edit(&mut t);
        fix_checksum(&mut t);
        t
    }

    fn fix_checksum(t: &mut [u8]) {
        t[9] = 0;
        let sum = t.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        t[9] = 0u8.wrapping_sub(sum);
    }

    fn put16(t: &mut [u8], at: usize, v: u16) {
        t[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn refused(t: &[u8]) -> String {
        parse(t).unwrap_err().to_string()
    }

    #[test]
    fn the_real_table() {
        let t = parse(DHCP).unwrap();
        assert_eq!((t.length, t.major_revision, t.minor_revision), (825, 1, 0));
        assert!(
            t.driver_dev_path
                .as_deref()
                .unwrap()
                .starts_with("Fv(7CB8BDC9")
        );
        let h = t.host.as_ref().unwrap();
        assert_eq!(h.primary_admin, PrimaryAdmin::NotIndicated);
        assert_eq!(t.hfis.len(), 1);
        assert_eq!(t.hfis[0].tcp.mac, [0x52, 0x54, 0, 0xb8, 0x19, 0xb9]);
        assert_eq!(
            t.hfis[0].tcp.ip,
            IpAddr::V4(Ipv4Addr::new(192, 168, 49, 155))
        );
        let s = &t.ssns[0];
        assert_eq!(
            (s.hfis.as_slice(), s.discovery, s.security),
            (&[1u8][..], Some(1), None)
        );
        assert_eq!(s.availability, Availability::NotIndicated);
        assert!(s.discovered && !s.unavailable() && !s.non_bootable);
        assert_eq!(s.extended.as_ref().unwrap().cntlid, 7);
        assert_eq!(t.discovery[0].hfi, Some(1));
        assert!(t.security.is_empty());
    }

    #[test]
    fn empty_secondary_hfi_list_means_the_primary() {
        let t = parse(&patched(|t| put16(t, SSNS + 52, 0))).unwrap();
        assert_eq!(t.ssns[0].hfis, [1]);
        // Secondaries naming no HFI (or the primary again) are dropped, not errors.
        let t = parse(&patched(|t| {
            let list = u32::from_le_bytes(t[SSNS + 48..SSNS + 52].try_into().unwrap()) as usize;
            t[list] = 7;
        }))
        .unwrap();
        assert_eq!(t.ssns[0].hfis, [1]);
    }

    #[test]
    fn empty_discovery_nqn_means_the_well_known_one() {
        let t = parse(&patched(|t| put16(t, DISC + 16, 0))).unwrap();
        assert_eq!(t.discovery[0].nqn, WELL_KNOWN_DISCOVERY_NQN);
        assert_eq!(t.discovery[0].uri, "nvme+tcp://192.168.49.10:4420/");
        assert_eq!(
            refused(&patched(|t| put16(t, DISC + 10, 0))),
            "discovery descriptor 1: URI: missing"
        );
    }

    #[test]
    fn header_errors_name_the_field() {
        assert_eq!(
            refused(&DHCP[..100]),
            "header: length: 100 bytes, a table has at least 128"
        );
        let mut t = DHCP.to_vec();
        t[9] ^= 1;
        assert_eq!(
            refused(&t),
            "header: checksum: the bytes sum to 0x01, not 0"
        );
        assert_eq!(
            refused(&patched(|t| t[8] = 2)),
            "header: major revision: 2, only 1 is known"
        );
        assert_eq!(
            refused(&patched(|t| t[4..8].copy_from_slice(&2000u32.to_le_bytes()))),
            "header: length: 2000, but the table has 825 bytes"
        );
        assert!(
            refused(&patched(
                |t| t[40..44].copy_from_slice(&0x1000u32.to_le_bytes())
            ))
            .starts_with("header: heap offset: heap at 0x160, 4096 bytes, ends beyond the table")
        );
        // Bytes after the header's length are not part of the table (nor of its checksum).
        let mut longer = DHCP.to_vec();
        longer.extend_from_slice(b"trailing");
        assert_eq!(parse(&longer).unwrap(), parse(DHCP).unwrap());
        // A newer minor revision is read.
        assert!(parse(&patched(|t| t[50] = 1)).is_ok());
    }

    #[test]
    fn control_valid_clear_means_nothing_booted() {
        let t = parse(&patched(|t| t[64 + 6] = 0)).unwrap();
        assert!(
            t.host.is_none() && t.hfis.is_empty() && t.ssns.is_empty() && t.discovery.is_empty()
        );
    }

    #[test]
    fn heap_objects_outside_the_heap_are_refused() {
        assert_eq!(
            refused(&patched(
                |t| t[SSNS + 48..SSNS + 52].copy_from_slice(&0x10u32.to_le_bytes())
            )),
            "SSNS descriptor 1: secondary HFI associations: heap object at 0x10, 1 bytes, \
             is outside the heap (0x160 to 0x339)"
        );
        assert_eq!(
            refused(&patched(|t| put16(t, SSNS + 58, 0xffff))),
            "SSNS descriptor 1: subsystem NQN: heap object at 0x2a0, 65535 bytes, \
             is outside the heap (0x160 to 0x339)"
        );
        assert_eq!(
            refused(&patched(
                |t| t[0x80 + 18..0x80 + 22].copy_from_slice(&u32::MAX.to_le_bytes())
            )),
            "host descriptor: host NQN: heap object at 0xffffffff, 68 bytes, \
             is outside the heap (0x160 to 0x339)"
        );
        assert_eq!(
            refused(&patched(|t| put16(t, 0xa0 + 20, 16))),
            "HFI descriptor 1: transport info: 16 bytes, too short for a HFI descriptor 1 \
             transport info (110)"
        );
    }

    #[test]
    fn ssns_errors_name_the_field() {
        assert_eq!(
            refused(&patched(|t| put16(t, SSNS + 58, 0))),
            "SSNS descriptor 1: subsystem NQN: missing"
        );
        // An object of NULs is as missing as one of length 0.
        assert_eq!(
            refused(&patched(|t| t[0x299] = 0)),
            "SSNS descriptor 1: transport service ID: missing"
        );
        assert_eq!(
            refused(&patched(|t| t[SSNS + 46] = 9)),
            "SSNS descriptor 1: primary HFI index: 9 names no valid TCP HFI descriptor"
        );
        assert_eq!(
            refused(&patched(|t| put16(t, SSNS + 14, 5))),
            "SSNS descriptor 1: transport address: 5 bytes, not an IP address (16)"
        );
        assert_eq!(
            refused(&patched(|t| t[0x2e2] = 8)),
            "SSNS descriptor 1 extended info: structure ID: not 9"
        );
        assert_eq!(
            refused(&patched(|t| t[SSNS] = 5)),
            "SSNS descriptor 1: structure ID: not 4"
        );
        // A non-UTF-8 string is refused rather than connected to under a mangled name.
        assert_eq!(
            refused(&patched(|t| t[0x2a0 + 3] = 0xff)),
            "SSNS descriptor 1: subsystem NQN: not UTF-8 text"
        );
    }

    #[test]
    fn list_headers_are_checked_against_the_table() {
        assert_eq!(
            refused(&patched(|t| t[64 + 23] = 200)),
            "control descriptor: HFI descriptor list: 200 entries of 32 bytes at 0xa0 do not fit \
             in the table (825 bytes)"
        );
        assert_eq!(
            refused(&patched(|t| put16(t, 64 + 28, 8))),
            "control descriptor: SSNS descriptor list: entry length 8, a descriptor has at least \
             66 bytes"
        );
    }

    #[test]
    fn flags_decode() {
        let t = parse(&patched(|t| {
            put16(t, SSNS + 3, 0x0001 | 0x0002 | 0x0100);
            put16(t, SSNS + 6, 0x0007);
            t[0x80 + 1] = 0x01 | 0x10;
            t[HFI_TCP + 6] = 0x01;
        }))
        .unwrap();
        let s = &t.ssns[0];
        assert!(s.unavailable() && s.non_bootable && !s.discovered);
        assert!(s.pdu_header_digest && s.data_digest);
        // The extended info is not in use any more.
        assert!(s.extended.is_none());
        let h = t.host.as_ref().unwrap();
        assert!(!h.host_id_configured && !h.host_nqn_configured);
        assert_eq!(h.primary_admin, PrimaryAdmin::Selected);
        let c = &t.hfis[0].tcp;
        assert!(!c.dhcp_override && !c.global_route && c.dhcp_server.is_none());
    }

    #[test]
    fn invalid_descriptors_are_skipped() {
        // An HFI with the valid flag clear is reserved; the SSNS that needs it then cannot be used.
        assert_eq!(
            refused(&patched(|t| t[0xa0 + 2] = 0)),
            "SSNS descriptor 1: primary HFI index: 1 names no valid TCP HFI descriptor"
        );
        let t = parse(&patched(|t| put16(t, SSNS + 3, 0))).unwrap();
        assert!(t.ssns.is_empty() && t.hfis.len() == 1);
        let t = parse(&patched(|t| t[DISC + 1] = 0)).unwrap();
        assert!(t.discovery.is_empty());
        assert_eq!(t.ssns[0].discovery, None);
    }

    /// A cheap in-process fuzz: random byte changes with the checksum fixed, so the parser gets
    /// past the header; whatever it makes of them, it must not panic, and what it accepts must
    /// hold together.
    #[test]
    fn random_edits_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut t = DHCP.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() % t.len() as u64) as usize;
                t[at] = next() as u8;
            }
            fix_checksum(&mut t);
            if let Ok(n) = parse(&t) {
                for s in &n.ssns {
                    assert!(!s.hfis.is_empty());
                    assert!(s.hfis.iter().all(|&i| n.hfi(i).is_some()));
                }
            }
        }
    }
}
