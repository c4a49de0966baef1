//! nvme-monitor: keeps NVMe over Fabrics connections up from the initramfs to the booted system.
//!
//! A functional core (engine, table, parsers) inside a thin poll shell (daemon). See doc/ and README.md.

#![deny(unsafe_code)]

#[macro_use]
pub mod log;

pub mod addr;
pub mod error;
pub mod opts;
