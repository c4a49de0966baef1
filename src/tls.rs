//! TLS for NVMe/TCP: what a discovery log entry asks of the channel, and whether a connection
//! gets `tls`.
//!
//! The TLS 1.3 handshake itself is done by a userspace agent (tlshd) the kernel calls over its
//! handshake netlink family; nvme-monitor passes `tls`, `keyring=` and `tls_key=` (key serials)
//! and reports what the kernel answers. PSKs are not imported here: they are in the kernel's
//! `.nvme` keyring (nvme-cli's `nvme tls-key --import`, or its udev rule at boot) or in the keyring
//! given with `--keyring`.
//!
//! The choice, per connection ([`choose`]):
//! - `--tls` or `--tls-key` for the source: TLS on every connection of it, as nvme-cli's
//!   connect-all does;
//! - else an entry whose TSAS SECTYPE names TLS gets TLS when TLS was configured at all (`--tls`,
//!   `--keyring`, `--tls-key`). Not configured: an entry that only offers it (TREQ "not
//!   required") is connected in the clear, one that requires it is not connected, with one line
//!   that says why, and not retried (the next discovery run says it again);
//! - an entry that names no TLS gets none;
//! - TLS 1.2 (SECTYPE 1) and reserved types: the kernel's host does TLS 1.3 only, so such an
//!   entry is connected in the clear when it only offers it, and not at all (one line) when it
//!   requires it.

use crate::addr::Transport;
use crate::discovery_log::DiscoveryEntry;

/// What a discovery log entry asks of the channel (TREQ bits 1:0, TCP TSAS SECTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelAsk {
    /// No TLS named (SECTYPE 0, or not TCP): plain unless the source always uses TLS.
    #[default]
    None,
    /// TLS named, TREQ "not required": TLS if configured, plain otherwise.
    Offered { sectype: u8 },
    /// TLS named, TREQ "required" or "not specified".
    Required { sectype: u8 },
}

/// TREQ bits 1:0 = 10b: a secure channel is not required.
const TREQ_NOT_REQUIRED: u8 = 0b10;

impl ChannelAsk {
    pub fn of_entry(e: &DiscoveryEntry) -> ChannelAsk {
        if e.transport != Transport::Tcp || e.tcp_sectype == 0 {
            return ChannelAsk::None;
        }
        let sectype = e.tcp_sectype;
        if e.treq & 0b11 == TREQ_NOT_REQUIRED {
            ChannelAsk::Offered { sectype }
        } else {
            ChannelAsk::Required { sectype }
        }
    }
}

/// The SECTYPE's name as nvmet's `addr_tsas` spells it.
pub fn sectype_name(sectype: u8) -> String {
    match sectype {
        1 => "tls1.2".into(),
        2 => "tls1.3".into(),
        n => format!("sectype {n}"),
    }
}

/// How one connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsChoice {
    Plain,
    Tls,
    /// The entry requires TLS and none is configured: not connected.
    NotConfigured {
        sectype: u8,
    },
    /// The entry requires a security type the Linux host does not do (it does TLS 1.3 only):
    /// not connected.
    Unsupported {
        sectype: u8,
    },
}

/// SECTYPE 2: TLS 1.3, the only one the kernel's NVMe/TCP host (and tlshd) does.
const SECTYPE_TLS13: u8 = 2;

/// See the module docs.
pub fn choose(ask: ChannelAsk, always: bool, configured: bool) -> TlsChoice {
    match ask {
        _ if always => TlsChoice::Tls,
        ChannelAsk::None => TlsChoice::Plain,
        ChannelAsk::Offered { sectype } if sectype != SECTYPE_TLS13 => TlsChoice::Plain,
        ChannelAsk::Required { sectype } if sectype != SECTYPE_TLS13 => {
            TlsChoice::Unsupported { sectype }
        }
        ChannelAsk::Offered { .. } if configured => TlsChoice::Tls,
        ChannelAsk::Offered { .. } => TlsChoice::Plain,
        ChannelAsk::Required { .. } if configured => TlsChoice::Tls,
        ChannelAsk::Required { sectype } => TlsChoice::NotConfigured { sectype },
    }
}

/// Why an entry is not connected (or a referral not followed), for the one log line.
pub fn refusal(choice: TlsChoice) -> Option<String> {
    match choice {
        TlsChoice::NotConfigured { sectype } => Some(format!(
            "requires TLS ({}), and none is configured (--tls, --keyring or --tls-key; tls in nvme-fabrics.conf)",
            sectype_name(sectype)
        )),
        TlsChoice::Unsupported { sectype } => Some(format!(
            "requires {}, which the Linux NVMe/TCP host does not do (TLS 1.3 only)",
            sectype_name(sectype)
        )),
        TlsChoice::Plain | TlsChoice::Tls => None,
    }
}

/// A key or keyring serial as the kernel takes it (`keyring=%d`, `tls_key=%d`): decimal, as
/// `keyctl show` prints it, or hex with `0x`, as /proc/keys and nvme-cli print it. Serials are
/// positive 32-bit numbers.
pub fn parse_key_serial(s: &str) -> Result<u32, &'static str> {
    const EXPECTED: &str = "expected a key serial (a positive number, decimal or 0x-prefixed hex)";
    let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse::<u32>(),
    }
    .map_err(|_| EXPECTED)?;
    if n == 0 || n > i32::MAX as u32 {
        return Err(EXPECTED);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_kernel::entry;

    fn ask(transport: Transport, treq: u8, sectype: u8) -> ChannelAsk {
        let mut e = entry(
            transport,
            crate::discovery_log::SubType::NvmSubsystem,
            "10.0.0.1",
            "4420",
            "nqn.2024-01.io.example:s",
        );
        e.treq = treq;
        e.tcp_sectype = sectype;
        ChannelAsk::of_entry(&e)
    }

    #[test]
    fn treq_and_sectype_say_what_an_entry_asks() {
        assert_eq!(ask(Transport::Tcp, 0, 0), ChannelAsk::None);
        // TREQ required without a TLS sectype: some other secure channel, nothing we can add.
        assert_eq!(ask(Transport::Tcp, 1, 0), ChannelAsk::None);
        assert_eq!(
            ask(Transport::Tcp, 1, 2),
            ChannelAsk::Required { sectype: 2 }
        );
        // "Not specified" with TLS named: treated as required (the port may refuse plain).
        assert_eq!(
            ask(Transport::Tcp, 0, 1),
            ChannelAsk::Required { sectype: 1 }
        );
        // Bit 2 (SQ flow control disable) does not change it.
        assert_eq!(
            ask(Transport::Tcp, 0b110, 2),
            ChannelAsk::Offered { sectype: 2 }
        );
        // TSAS means something else for RDMA.
        assert_eq!(ask(Transport::Rdma, 1, 2), ChannelAsk::None);
    }

    #[test]
    fn tls_is_chosen_when_asked_for_or_configured_and_refused_only_when_required() {
        let req = ChannelAsk::Required { sectype: 2 };
        let off = ChannelAsk::Offered { sectype: 2 };
        let none = ChannelAsk::None;
        // (ask, always, configured) -> choice
        let cases = [
            (none, false, false, TlsChoice::Plain),
            (none, false, true, TlsChoice::Plain),
            (none, true, true, TlsChoice::Tls),
            (off, false, false, TlsChoice::Plain),
            (off, false, true, TlsChoice::Tls),
            (req, false, true, TlsChoice::Tls),
            (req, true, true, TlsChoice::Tls),
            (req, false, false, TlsChoice::NotConfigured { sectype: 2 }),
            // TLS 1.2 (or a reserved type): the host cannot; offered, it goes in the clear.
            (
                ChannelAsk::Required { sectype: 1 },
                false,
                true,
                TlsChoice::Unsupported { sectype: 1 },
            ),
            (
                ChannelAsk::Offered { sectype: 1 },
                false,
                true,
                TlsChoice::Plain,
            ),
            (
                ChannelAsk::Offered { sectype: 9 },
                false,
                true,
                TlsChoice::Plain,
            ),
        ];
        assert!(
            refusal(TlsChoice::Unsupported { sectype: 1 })
                .unwrap()
                .contains("tls1.2, which the Linux NVMe/TCP host does not do")
        );
        assert_eq!(refusal(TlsChoice::Tls), None);
        for (a, always, configured, want) in cases {
            assert_eq!(
                choose(a, always, configured),
                want,
                "{a:?} {always} {configured}"
            );
        }
    }

    #[test]
    fn key_serials_are_decimal_or_hex_and_positive() {
        assert_eq!(parse_key_serial("123456789"), Ok(123456789));
        assert_eq!(parse_key_serial("0x1f2e3d4c"), Ok(0x1f2e3d4c));
        for bad in [
            "",
            "0",
            "-5",
            "0x",
            "0x80000000",
            "2147483648",
            ".nvme",
            "12a",
            " 1",
        ] {
            assert!(parse_key_serial(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_key_serial("2147483647"), Ok(i32::MAX as u32));
    }

    #[test]
    fn sectypes_are_named_as_nvmet_does() {
        assert_eq!(sectype_name(2), "tls1.3");
        assert_eq!(sectype_name(1), "tls1.2");
        assert_eq!(sectype_name(7), "sectype 7");
    }
}
