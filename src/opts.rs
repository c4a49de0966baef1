//! Connection options, as nvme-cli's `connect-all` names them.
//!
//! Shared by the command line (defaults for every connection), discovery.conf lines (per discovery
//! controller) and the /dev/nvme-fabrics option builder. `None` means "not given: kernel default".

use crate::secret::Secret;

/// Options that are passed through to the kernel for every controller we create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOpts {
    pub hostnqn: Option<String>,
    pub hostid: Option<String>,
    pub nr_io_queues: Option<u32>,
    pub nr_write_queues: Option<u32>,
    pub nr_poll_queues: Option<u32>,
    pub queue_size: Option<u32>,
    pub keep_alive_tmo: Option<u32>,
    pub reconnect_delay: Option<u32>,
    /// -1 means "retry forever" (sysfs shows `off`).
    pub ctrl_loss_tmo: Option<i32>,
    pub fast_io_fail_tmo: Option<i32>,
    pub tos: Option<i32>,
    pub duplicate_connect: bool,
    pub disable_sqflow: bool,
    pub hdr_digest: bool,
    pub data_digest: bool,
    /// DH-HMAC-CHAP: the host's key (`dhchap_secret`) and the controller's, which makes the
    /// authentication bidirectional (`dhchap_ctrl_secret`).
    pub dhchap_secret: Option<Secret>,
    pub dhchap_ctrl_secret: Option<Secret>,
    /// The keys are meant for the discovery controller too: given with its address (its
    /// discovery.conf line, its `[Discovery Controller]`, `-a` on our command line). A key
    /// given for every connection reaches I/O controllers only, as libnvme never sends the
    /// host's key to a discovery controller that was not configured for it.
    pub dhchap_for_discovery: bool,
    /// TLS (NVMe/TCP only): `tls` asks for it on every connection of this source; a discovery
    /// log entry whose TSAS asks for TLS gets it when any of the three is set
    /// ([`crate::tls::choose`]). `keyring` and `tls_key` are key serials, as the kernel takes
    /// them; a `tls_key` means TLS with that PSK. `keyring` 0 is `.nvme`, the kernel's default
    /// keyring: it counts as configured and is not passed.
    pub tls: bool,
    pub keyring: Option<u32>,
    pub tls_key: Option<u32>,
}

impl ConnectOpts {
    /// `self` with every unset field taken from `defaults` (a discovery.conf line over the CLI).
    pub fn or(&self, defaults: &ConnectOpts) -> ConnectOpts {
        ConnectOpts {
            hostnqn: self.hostnqn.clone().or_else(|| defaults.hostnqn.clone()),
            hostid: self.hostid.clone().or_else(|| defaults.hostid.clone()),
            nr_io_queues: self.nr_io_queues.or(defaults.nr_io_queues),
            nr_write_queues: self.nr_write_queues.or(defaults.nr_write_queues),
            nr_poll_queues: self.nr_poll_queues.or(defaults.nr_poll_queues),
            queue_size: self.queue_size.or(defaults.queue_size),
            keep_alive_tmo: self.keep_alive_tmo.or(defaults.keep_alive_tmo),
            reconnect_delay: self.reconnect_delay.or(defaults.reconnect_delay),
            ctrl_loss_tmo: self.ctrl_loss_tmo.or(defaults.ctrl_loss_tmo),
            fast_io_fail_tmo: self.fast_io_fail_tmo.or(defaults.fast_io_fail_tmo),
            tos: self.tos.or(defaults.tos),
            duplicate_connect: self.duplicate_connect || defaults.duplicate_connect,
            disable_sqflow: self.disable_sqflow || defaults.disable_sqflow,
            hdr_digest: self.hdr_digest || defaults.hdr_digest,
            data_digest: self.data_digest || defaults.data_digest,
            dhchap_for_discovery: self.dhchap_for_discovery
                || self.dhchap_secret.is_some()
                || self.dhchap_ctrl_secret.is_some(),
            dhchap_secret: self
                .dhchap_secret
                .clone()
                .or_else(|| defaults.dhchap_secret.clone()),
            dhchap_ctrl_secret: self
                .dhchap_ctrl_secret
                .clone()
                .or_else(|| defaults.dhchap_ctrl_secret.clone()),
            tls: self.tls || defaults.tls,
            keyring: self.keyring.or(defaults.keyring),
            tls_key: self.tls_key.or(defaults.tls_key),
        }
    }

    /// Was TLS configured for this source at all (so an entry that requires it can have it)?
    pub fn tls_configured(&self) -> bool {
        self.tls || self.keyring.is_some() || self.tls_key.is_some()
    }

    /// Does every connection of this source use TLS, whatever a discovery log entry says?
    pub fn tls_always(&self) -> bool {
        self.tls || self.tls_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_values_win_over_defaults() {
        let line = ConnectOpts {
            queue_size: Some(64),
            ..Default::default()
        };
        let cli = ConnectOpts {
            queue_size: Some(128),
            nr_io_queues: Some(4),
            hdr_digest: true,
            ..Default::default()
        };
        let m = line.or(&cli);
        assert_eq!(m.queue_size, Some(64));
        assert_eq!(m.nr_io_queues, Some(4));
        assert!(m.hdr_digest);
    }
}
