//! Transport addresses: the key of the connection table.
//!
//! Strings live in fixed-capacity inline buffers so that the table never grows on the heap and a
//! lookup by a borrowed uevent field allocates nothing.
//!
//! # References
//! - NVMe base specification, Discovery Log Page Entry (TRTYPE, TRADDR 256 bytes, TRSVCID 32 bytes)
//! - drivers/nvme/host/fabrics.c (`none` and `(null)` as unset values)

use std::fmt;

/// A string of at most `N` bytes stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize> {
    len: u16,
    buf: [u8; N],
}

impl<const N: usize> FixedStr<N> {
    pub const EMPTY: Self = FixedStr {
        len: 0,
        buf: [0; N],
    };

    /// `None` if `s` does not fit.
    pub fn new(s: &str) -> Option<Self> {
        if s.len() > N {
            return None;
        }
        let mut buf = [0; N];
        buf[..s.len()].copy_from_slice(s.as_bytes());
        Some(FixedStr {
            len: s.len() as u16,
            buf,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ever filled from a &str, so this cannot fail; fall back to "" rather than panic.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// NVMe-oF transport type, named as the kernel and nvme-cli name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Rdma,
    Fc,
    Tcp,
    Loop,
}

impl Transport {
    /// From the `transport=` token / sysfs `transport` / `NVME_TRTYPE` value.
    pub fn from_name(s: &str) -> Option<Transport> {
        match s {
            "rdma" => Some(Transport::Rdma),
            "fc" => Some(Transport::Fc),
            "tcp" => Some(Transport::Tcp),
            "loop" => Some(Transport::Loop),
            _ => None,
        }
    }

    /// From the discovery log entry TRTYPE byte.
    pub fn from_trtype(b: u8) -> Option<Transport> {
        match b {
            1 => Some(Transport::Rdma),
            2 => Some(Transport::Fc),
            3 => Some(Transport::Tcp),
            254 => Some(Transport::Loop),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Rdma => "rdma",
            Transport::Fc => "fc",
            Transport::Tcp => "tcp",
            Transport::Loop => "loop",
        }
    }

    /// The discovery service port nvme-cli assumes when none is given.
    pub fn default_discovery_trsvcid(self) -> Option<&'static str> {
        match self {
            Transport::Tcp => Some("8009"),
            Transport::Rdma => Some("4420"),
            Transport::Fc | Transport::Loop => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub const TRADDR_MAX: usize = 256;
pub const TRSVCID_MAX: usize = 32;
pub const HOST_TRADDR_MAX: usize = 64;
/// IFNAMSIZ - 1
pub const HOST_IFACE_MAX: usize = 15;
/// NVMe NQNs are at most 223 bytes.
pub const NQN_MAX: usize = 223;

pub type Nqn = FixedStr<NQN_MAX>;

/// The kernel and nvme-cli write `none` (sysfs, uevents) or `(null)` (loop uevents) for an unset field.
pub fn unset_to_empty(s: &str) -> &str {
    match s {
        "none" | "(null)" => "",
        s => s,
    }
}

/// Where a discovery controller is reached, and from which host port.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportAddr {
    pub transport: Transport,
    pub traddr: FixedStr<TRADDR_MAX>,
    pub trsvcid: FixedStr<TRSVCID_MAX>,
    pub host_traddr: FixedStr<HOST_TRADDR_MAX>,
    pub host_iface: FixedStr<HOST_IFACE_MAX>,
    /// Empty means the daemon's default host NQN.
    pub hostnqn: Nqn,
}

impl TransportAddr {
    /// The table's form: our own host NQN is the default host, written as no host NQN, so an
    /// address reaches one slot however it was written (a config line, the state file).
    pub fn with_default_host(mut self, our_hostnqn: &str) -> TransportAddr {
        if self.hostnqn.as_str() == our_hostnqn {
            self.hostnqn = Nqn::EMPTY;
        }
        self
    }

    /// The state file's form: the effective host NQN written out, so the next instance (whose
    /// default may differ) knows which host the controller was made for.
    pub fn with_effective_host(mut self, our_hostnqn: &str) -> TransportAddr {
        if self.hostnqn.is_empty() {
            self.hostnqn = Nqn::new(our_hostnqn).unwrap_or_default();
        }
        self
    }

    /// Build from borrowed fields; `none`/`(null)` count as unset. Errors name the field that does not fit.
    pub fn new(
        transport: Transport,
        traddr: &str,
        trsvcid: &str,
        host_traddr: &str,
        host_iface: &str,
    ) -> Result<TransportAddr, &'static str> {
        Ok(TransportAddr {
            transport,
            traddr: FixedStr::new(unset_to_empty(traddr)).ok_or("traddr")?,
            trsvcid: FixedStr::new(unset_to_empty(trsvcid)).ok_or("trsvcid")?,
            host_traddr: FixedStr::new(unset_to_empty(host_traddr)).ok_or("host_traddr")?,
            host_iface: FixedStr::new(unset_to_empty(host_iface)).ok_or("host_iface")?,
            hostnqn: Nqn::EMPTY,
        })
    }

    /// The same transport address from the same host port, whatever the host NQN: uevents and
    /// sysfs `address` carry none.
    pub fn same_port(&self, other: &TransportAddr) -> bool {
        TransportAddr {
            hostnqn: other.hostnqn,
            ..*self
        } == *other
    }
}

impl fmt::Debug for TransportAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `tcp traddr=192.168.1.3,trsvcid=8009[,host_traddr=..][,host_iface=..]` as in nvme-cli's output.
impl fmt::Display for TransportAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} traddr={}",
            self.transport,
            if self.traddr.is_empty() {
                "none"
            } else {
                self.traddr.as_str()
            }
        )?;
        if !self.trsvcid.is_empty() {
            write!(f, ",trsvcid={}", self.trsvcid)?;
        }
        if !self.host_traddr.is_empty() {
            write!(f, ",host_traddr={}", self.host_traddr)?;
        }
        if !self.host_iface.is_empty() {
            write!(f, ",host_iface={}", self.host_iface)?;
        }
        if !self.hostnqn.is_empty() {
            write!(f, ",hostnqn={}", self.hostnqn)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_str_round_trip_and_overflow() {
        let s = FixedStr::<4>::new("abcd").unwrap();
        assert_eq!(s.as_str(), "abcd");
        assert!(FixedStr::<4>::new("abcde").is_none());
        assert!(FixedStr::<4>::EMPTY.is_empty());
    }

    #[test]
    fn none_and_null_are_unset() {
        let a = TransportAddr::new(Transport::Loop, "(null)", "none", "none", "none").unwrap();
        assert!(a.traddr.is_empty() && a.trsvcid.is_empty() && a.host_iface.is_empty());
        let b = TransportAddr::new(Transport::Loop, "", "", "none", "(null)").unwrap();
        assert_eq!(a, b);
        let mut c = b;
        c.hostnqn = Nqn::new("nqn.2024-01.io.example:other").unwrap();
        assert!(a.same_port(&c) && a != c);
        assert!(!a.same_port(&TransportAddr::new(Transport::Tcp, "", "", "", "").unwrap()));
    }

    #[test]
    fn too_long_field_is_named() {
        let long = "x".repeat(300);
        assert_eq!(
            TransportAddr::new(Transport::Tcp, &long, "", "", "").unwrap_err(),
            "traddr"
        );
        assert_eq!(
            TransportAddr::new(Transport::Tcp, "a", "", "", "eth0-way-too-long-name").unwrap_err(),
            "host_iface"
        );
    }

    #[test]
    fn display_like_nvme_cli() {
        let a = TransportAddr::new(Transport::Tcp, "127.0.0.1", "8009", "", "").unwrap();
        assert_eq!(a.to_string(), "tcp traddr=127.0.0.1,trsvcid=8009");
    }

    #[test]
    fn trtype_bytes() {
        assert_eq!(Transport::from_trtype(3), Some(Transport::Tcp));
        assert_eq!(Transport::from_trtype(254), Some(Transport::Loop));
        assert_eq!(Transport::from_trtype(0), None);
        assert_eq!(Transport::from_name("fc"), Some(Transport::Fc));
    }
}
