//! nvme-monitor: keeps NVMe over Fabrics connections up from the initramfs to the booted system.
//!
//! A functional core (engine, table, parsers) inside a thin poll shell (daemon). See doc/ and README.md.

#![deny(unsafe_code)]

#[macro_use]
pub mod log;

pub mod addr;
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod discovery_log;
pub mod engine;
pub mod error;
pub mod events;
pub mod exclusions;
pub mod fabrics;
pub mod fabrics_conf;
pub mod fake_kernel;
pub mod handoff;
pub mod ini;
pub mod json;
pub mod kernel;
pub mod model;
pub mod nbft;
pub mod nbft_netcfg;
pub mod nbft_paths;
pub mod nbft_show;
pub mod netlink;
pub mod netwatch;
pub mod notify;
pub mod opts;
pub mod ownership;
pub mod publish;
pub mod registry;
pub mod rtnetlink;
pub mod secret;
pub mod settings;
pub mod state;
pub mod statedir;
pub mod status;
pub mod sys;
pub mod sysfs;
pub mod table;
pub mod tls;
pub mod udev;
pub mod uevent;
