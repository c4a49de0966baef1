//! An in-memory kernel behind the [`Kernel`] seam, for host tests and the fuzz harness.
//!
//! It behaves the way the real one does where our ownership model is at stake: instance numbers
//! are the smallest free ones (an IDA, reused at once), identities are never reused, a reset gives
//! a new cntlid, discovery controllers may be duplicated (the kernel forces duplicate_connect for
//! them), an I/O connect to a subsystem that is already connected at that address says EALREADY.
//! It also counts what must never happen: deleting a controller the daemon did not create.

use std::cell::RefCell;
use std::collections::BTreeMap;

use rustix::io::Errno;

use crate::addr::{FixedStr, Nqn, Transport};
use crate::discovery_log::{DiscoveryEntry, SubType};
use crate::error::{Error, Result};
use crate::fabrics::{ConnectOutcome, DISCOVERY_NQN, SupportedTokens};
use crate::kernel::{Kernel, LogEntries};
use crate::sysfs::{Controller, CtrlState};

/// A target port: what a discovery controller there reports, and whether it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePort {
    pub transport: Transport,
    pub traddr: String,
    pub trsvcid: String,
    pub up: bool,
    /// NVM subsystems on this port; a subsystem in `refused` is listed but refuses connects.
    pub subsystems: Vec<String>,
    pub refused: Vec<String>,
    /// Referrals: (transport, traddr, trsvcid, subnqn).
    pub referrals: Vec<(Transport, String, String, String)>,
    /// TREQ and TCP SECTYPE of its entries (TLS: `(1, 2)` required TLS 1.3).
    pub treq_sectype: (u8, u8),
}

impl FakePort {
    pub fn new(transport: Transport, traddr: &str, trsvcid: &str) -> FakePort {
        FakePort {
            transport,
            traddr: traddr.into(),
            trsvcid: trsvcid.into(),
            up: true,
            subsystems: Vec::new(),
            refused: Vec::new(),
            referrals: Vec::new(),
            treq_sectype: (0, 0),
        }
    }

    fn serves(&self, transport: Transport, traddr: &str, trsvcid: &str) -> bool {
        self.transport == transport
            && (transport == Transport::Loop || (self.traddr == traddr && self.trsvcid == trsvcid))
    }
}

/// A uevent the kernel would send, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeEvent {
    pub kind: FakeEventKind,
    pub instance: u32,
    pub transport: Transport,
    pub traddr: String,
    pub trsvcid: String,
    pub discovery: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeEventKind {
    /// `add` then `NVME_EVENT=connected`.
    Connected,
    /// `NVME_EVENT=rediscover` after a reset of a discovery controller.
    Rediscover,
    /// The discovery log changed (AEN on each discovery controller of the port).
    LogChanged,
    Removed,
}

/// One controller and who made it.
#[derive(Debug, Clone)]
pub struct FakeCtrl {
    pub ctrl: Controller,
    /// Created through [`Kernel::connect`], i.e. by the code under test.
    pub by_daemon: bool,
}

#[derive(Debug, Default, Clone)]
pub struct FakeState {
    pub ctrls: BTreeMap<u32, FakeCtrl>,
    pub ports: Vec<FakePort>,
    pub fabrics_absent: bool,
    next_ino: u64,
    next_cntlid: u16,
    /// Deletions of controllers the daemon did not create: must stay empty.
    pub foreign_deleted: Vec<String>,
    pub connects: u64,
    pub log_reads: u64,
    /// Log reads of a controller another orchestrator registered: must stay 0.
    pub claimed_log_reads: u64,
    /// I/O connects written although the subsystem was connected at that address: must stay 0.
    pub duplicate_io_connects: u64,
    /// Every uevent so far, for the caller to deliver when it likes (late, out of step).
    pub events: Vec<FakeEvent>,
    /// Every option string written to /dev/nvme-fabrics, in order.
    pub written: Vec<String>,
    /// `nvme_core.admin_timeout`; `None` is the kernel's default.
    pub admin_timeout: Option<std::time::Duration>,
}

/// The in-memory kernel. Interior mutability because the seam takes `&self`, as the real kernel does.
#[derive(Debug, Default, Clone)]
pub struct FakeKernel {
    pub state: RefCell<FakeState>,
}

fn nvme_err(what: &str, e: Errno) -> Error {
    Error::os(what.to_owned(), e)
}

impl FakeState {
    fn event(&mut self, kind: FakeEventKind, instance: u32) {
        if let Some(c) = self.ctrls.get(&instance) {
            let ev = FakeEvent {
                kind,
                instance,
                transport: c.ctrl.transport,
                traddr: c.ctrl.traddr.clone(),
                trsvcid: c.ctrl.trsvcid.clone(),
                discovery: c.ctrl.is_discovery(),
            };
            self.events.push(ev);
        }
    }

    /// The discovery log of the port at `at` changed: every discovery controller there says so.
    pub fn log_changed(&mut self, at: (Transport, &str, &str)) {
        let dcs: Vec<u32> = self
            .ctrls
            .values()
            .filter(|c| {
                c.ctrl.is_discovery()
                    && c.ctrl.transport == at.0
                    && c.ctrl.traddr == at.1
                    && c.ctrl.trsvcid == at.2
            })
            .map(|c| c.ctrl.instance)
            .collect();
        for i in dcs {
            self.event(FakeEventKind::LogChanged, i);
        }
    }

    fn free_instance(&self) -> u32 {
        (0..).find(|i| !self.ctrls.contains_key(i)).unwrap_or(0)
    }

    /// Add a controller at the lowest free number; returns the number.
    pub fn add(
        &mut self,
        (transport, traddr, trsvcid): (Transport, &str, &str),
        subsysnqn: &str,
        hostnqn: &str,
        discovery: bool,
        by_daemon: bool,
    ) -> u32 {
        let instance = self.free_instance();
        self.next_ino += 1;
        self.next_cntlid = self.next_cntlid.wrapping_add(1);
        let ctrl = Controller {
            name: format!("nvme{instance}"),
            instance,
            transport,
            traddr: traddr.into(),
            trsvcid: trsvcid.into(),
            host_traddr: String::new(),
            host_iface: String::new(),
            src_addr: String::new(),
            subsysnqn: subsysnqn.into(),
            state: CtrlState::Live,
            cntrltype: if discovery { "discovery" } else { "io" }.into(),
            hostnqn: hostnqn.into(),
            cntlid: Some(self.next_cntlid),
            ino: 1000 + self.next_ino,
            claimed_by: None,
        };
        self.ctrls.insert(instance, FakeCtrl { ctrl, by_daemon });
        self.event(FakeEventKind::Connected, instance);
        instance
    }

    /// Another orchestrator registers `instance` as its own (nvme-cli 3's registry).
    pub fn claim(&mut self, instance: u32, owner: &str) {
        if let Some(c) = self.ctrls.get_mut(&instance) {
            c.ctrl.claimed_by = Some(owner.to_owned());
        }
    }

    /// A reset or reconnect: same controller, the target hands out another cntlid.
    pub fn reset(&mut self, instance: u32) {
        self.next_cntlid = self.next_cntlid.wrapping_add(1);
        if let Some(c) = self.ctrls.get_mut(&instance) {
            c.ctrl.cntlid = Some(self.next_cntlid);
            if c.ctrl.is_discovery() {
                self.event(FakeEventKind::Rediscover, instance);
            }
        }
    }

    /// The kernel dropped the controller (ctrl_loss_tmo, an admin's delete).
    pub fn remove(&mut self, instance: u32) -> bool {
        self.event(FakeEventKind::Removed, instance);
        self.ctrls.remove(&instance).is_some()
    }

    pub fn set_state(&mut self, instance: u32, state: CtrlState) {
        if let Some(c) = self.ctrls.get_mut(&instance) {
            c.ctrl.state = state;
        }
    }

    fn port_of(&self, c: &Controller) -> Option<&FakePort> {
        self.ports
            .iter()
            .find(|p| p.serves(c.transport, &c.traddr, &c.trsvcid))
    }
}

/// `key=value` from an option string (the first one: tokens are not repeated by us).
fn opt<'a>(options: &'a str, key: &str) -> Option<&'a str> {
    options
        .split(',')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn flag(options: &str, key: &str) -> bool {
    options.split(',').any(|kv| kv == key)
}

/// A plain entry as nvmet reports it (TREQ and TSAS zero).
pub fn entry(
    transport: Transport,
    subtype: SubType,
    traddr: &str,
    trsvcid: &str,
    subnqn: &str,
) -> DiscoveryEntry {
    DiscoveryEntry {
        transport,
        adrfam: match transport {
            Transport::Tcp | Transport::Rdma => 1,
            Transport::Fc => 4,
            Transport::Loop => 254,
        },
        subtype,
        treq: 0,
        portid: 1,
        cntlid: 0xffff,
        asqsz: 32,
        eflags: 0,
        tcp_sectype: 0,
        trsvcid: FixedStr::new(trsvcid).unwrap_or_default(),
        subnqn: Nqn::new(subnqn).unwrap_or_default(),
        traddr: FixedStr::new(traddr).unwrap_or_default(),
    }
}

impl Kernel for FakeKernel {
    fn fabrics_present(&self) -> bool {
        !self.state.borrow().fabrics_absent
    }

    fn supported_tokens(&self) -> Result<SupportedTokens> {
        // What a 6.12 kernel lists before any write. Parsed once: a discovery run asks for it
        // every time, and parsing it was a third of the ownership fuzz target's time.
        static TOKENS: std::sync::OnceLock<SupportedTokens> = std::sync::OnceLock::new();
        Ok(*TOKENS.get_or_init(|| {
            SupportedTokens::parse(
                "instance=-1,cntlid=-1,transport=%s,traddr=%s,trsvcid=%s,nqn=%s,queue_size=%d,\
                 nr_io_queues=%d,reconnect_delay=%d,ctrl_loss_tmo=%d,keep_alive_tmo=%d,hostnqn=%s,\
                 host_traddr=%s,host_iface=%s,hostid=%s,duplicate_connect,disable_sqflow,hdr_digest,\
                 data_digest,nr_write_queues=%d,nr_poll_queues=%d,tos=%d,keyring=%d,tls_key=%d,\
                 fast_io_fail_tmo=%d,discovery,dhchap_secret=%s,dhchap_ctrl_secret=%s,tls",
            )
        }))
    }

    fn connect(&self, options: &str) -> Result<ConnectOutcome> {
        let mut st = self.state.borrow_mut();
        st.connects += 1;
        st.written.push(options.to_string());
        let what = "write to /dev/nvme-fabrics";
        let transport = opt(options, "transport")
            .and_then(Transport::from_name)
            .ok_or_else(|| nvme_err(what, Errno::INVAL))?;
        let nqn = opt(options, "nqn").ok_or_else(|| nvme_err(what, Errno::INVAL))?;
        let traddr = opt(options, "traddr").unwrap_or("");
        let trsvcid = opt(options, "trsvcid").unwrap_or("");
        let hostnqn = opt(options, "hostnqn").unwrap_or("");
        if transport == Transport::Loop && opt(options, "host_traddr").is_some() {
            // target/loop.c allows no host_traddr.
            return Err(nvme_err(what, Errno::INVAL));
        }
        let discovery = nqn == DISCOVERY_NQN || flag(options, "discovery");
        let port = st
            .ports
            .iter()
            .find(|p| p.up && p.serves(transport, traddr, trsvcid))
            .cloned();
        let Some(port) = port else {
            return Err(nvme_err(
                what,
                if transport == Transport::Fc {
                    Errno::NOENT
                } else {
                    Errno::CONNREFUSED
                },
            ));
        };
        if !discovery {
            if !port.subsystems.iter().any(|s| s == nqn) || port.refused.iter().any(|s| s == nqn) {
                return Err(nvme_err(what, Errno::IO));
            }
            let dup = st.ctrls.values().any(|c| {
                c.ctrl.subsysnqn == nqn
                    && c.ctrl.transport == transport
                    && c.ctrl.traddr == traddr
                    && c.ctrl.trsvcid == trsvcid
                    && c.ctrl.hostnqn == hostnqn
                    && !c.ctrl.state.is_going_away()
            });
            if dup && !flag(options, "duplicate_connect") {
                st.duplicate_io_connects += 1;
                return Ok(ConnectOutcome::AlreadyConnected);
            }
        }
        let instance = st.add(
            (transport, traddr, trsvcid),
            nqn,
            hostnqn,
            discovery,
            /* by_daemon */ true,
        );
        let cntlid = st.ctrls[&instance].ctrl.cntlid.unwrap_or(0);
        Ok(ConnectOutcome::Connected { instance, cntlid })
    }

    fn controllers(&self) -> Vec<Controller> {
        self.state
            .borrow()
            .ctrls
            .values()
            .map(|c| c.ctrl.clone())
            .collect()
    }

    fn discovery_controllers(
        &self,
        addr: &crate::addr::TransportAddr,
        recorded: Option<u32>,
    ) -> crate::sysfs::Scan {
        let all = self.controllers();
        crate::sysfs::Scan {
            newest_ino: all.iter().map(|c| c.ino).max().unwrap_or(0),
            ctrls: all
                .into_iter()
                .filter(|c| crate::sysfs::may_serve(c, addr, recorded))
                .collect(),
        }
    }

    fn io_controllers(&self) -> Vec<Controller> {
        let mut all = self.controllers();
        all.retain(crate::sysfs::may_be_entry);
        all
    }

    fn controller(&self, name: &str) -> Result<Controller> {
        let instance = crate::sysfs::instance_of(name)
            .ok_or_else(|| Error::invalid(format!("find controller {name}"), "not nvmeN"))?;
        self.state
            .borrow()
            .ctrls
            .get(&instance)
            .map(|c| c.ctrl.clone())
            .ok_or_else(|| nvme_err(&format!("read /sys/class/nvme/{name}"), Errno::NOENT))
    }

    fn complete(&self, made: Controller) -> Result<Option<Controller>> {
        Ok(self
            .state
            .borrow()
            .ctrls
            .get(&made.instance)
            .map(|c| Controller {
                state: c.ctrl.state,
                ino: c.ctrl.ino,
                ..made
            }))
    }

    fn identity(&self, name: &str) -> Result<Option<u64>> {
        let instance = crate::sysfs::instance_of(name)
            .ok_or_else(|| Error::invalid(format!("find controller {name}"), "not nvmeN"))?;
        Ok(self.state.borrow().ctrls.get(&instance).map(|c| c.ctrl.ino))
    }

    fn admin_timeout(&self) -> std::time::Duration {
        self.state
            .borrow()
            .admin_timeout
            .unwrap_or(crate::sysfs::DEFAULT_ADMIN_TIMEOUT)
    }

    fn claimed_by(&self, instance: u32) -> Option<String> {
        let st = self.state.borrow();
        st.ctrls.get(&instance)?.ctrl.claimed_by.clone()
    }

    fn delete_controller(&self, name: &str) -> Result<()> {
        let instance = crate::sysfs::instance_of(name)
            .ok_or_else(|| Error::invalid(format!("delete {name}"), "not nvmeN"))?;
        let mut st = self.state.borrow_mut();
        st.event(FakeEventKind::Removed, instance);
        match st.ctrls.remove(&instance) {
            Some(c) => {
                if !c.by_daemon {
                    st.foreign_deleted.push(name.to_owned());
                }
                Ok(())
            }
            None => Err(nvme_err(&format!("delete {name}"), Errno::NOENT)),
        }
    }

    fn read_log(&self, instance: u32) -> Result<LogEntries> {
        let mut st = self.state.borrow_mut();
        st.log_reads += 1;
        let what = format!("read the discovery log of nvme{instance}");
        let c = st
            .ctrls
            .get(&instance)
            .map(|c| c.ctrl.clone())
            .ok_or_else(|| nvme_err(&what, Errno::NODEV))?;
        if !c.is_discovery() || c.state != CtrlState::Live {
            return Err(nvme_err(&what, Errno::INVAL));
        }
        if c.claimed_by.is_some() {
            st.claimed_log_reads += 1;
        }
        let port = st
            .port_of(&c)
            .filter(|p| p.up)
            .cloned()
            .ok_or_else(|| nvme_err(&what, Errno::IO))?;
        let mut out: LogEntries = port
            .subsystems
            .iter()
            .map(|s| {
                let mut e = entry(
                    port.transport,
                    SubType::NvmSubsystem,
                    &port.traddr,
                    &port.trsvcid,
                    s,
                );
                (e.treq, e.tcp_sectype) = port.treq_sectype;
                Ok(e)
            })
            .collect();
        out.extend(port.referrals.iter().map(|(t, a, s, nqn)| {
            let mut e = entry(*t, SubType::Referral, a, s, nqn);
            (e.treq, e.tcp_sectype) = port.treq_sectype;
            Ok(e)
        }));
        Ok(out)
    }
}
