//! Discovery log pages from a hostile controller: the header, single entries, and the whole
//! read loop (chunking, generation counter re-checks, source errors).
//!
//! Input: byte 0 controls the log source (bits 0-1: max_tries; bits 2-3: how many header reads
//! bump the generation counter; bits 4-7: fail the Nth read, 0 = never); the rest is the page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::discovery_log::{
    ENTRY_LEN, LogPageSource, MAX_ENTRIES, parse_entry_at, parse_header, read_discovery_log,
};
use nvme_monitor::error::{Error, Result};

/// The page in memory; bytes past its end read as zeros, as a short log does on a real controller.
struct FuzzLog<'a> {
    page: &'a [u8],
    bumps: u8,
    fail_at: u8,
    reads: u32,
    genctr_delta: u64,
}

impl LogPageSource for FuzzLog<'_> {
    fn read(&mut self, offset: u64, buf: &mut [u8], _retain: bool) -> Result<()> {
        self.reads += 1;
        if self.fail_at != 0 && self.reads == u32::from(self.fail_at) {
            return Err(Error::invalid("read the fuzz log", "injected failure"));
        }
        let start = usize::try_from(offset).map_or(self.page.len(), |o| o.min(self.page.len()));
        let have = &self.page[start..];
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        buf[n..].fill(0);
        if offset == 0 && buf.len() >= 8 {
            let g = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
            buf[..8].copy_from_slice(&g.wrapping_add(self.genctr_delta).to_le_bytes());
            if self.bumps > 0 {
                self.bumps -= 1;
                self.genctr_delta += 1;
            }
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    for (i, window) in data.chunks(ENTRY_LEN).enumerate() {
        match parse_entry_at(i, window) {
            Ok(e) => {
                let _ = (
                    e.to_addr(),
                    e.duplicate_returned_info(),
                    e.explicit_persistent_connection(),
                );
                let _ = (e.no_cdc_connectivity(), e.sq_flow_control_disable_allowed());
            }
            Err(err) => {
                let _ = err.to_string();
            }
        }
    }

    let Some((&ctl, page)) = data.split_first() else {
        return;
    };
    let mut src = FuzzLog {
        page,
        bumps: (ctl >> 2) & 3,
        fail_at: ctl >> 4,
        reads: 0,
        genctr_delta: 0,
    };
    match read_discovery_log(&mut src, u32::from(ctl & 3)) {
        Ok(log) => {
            let want = usize::try_from(log.numrec).map_or(MAX_ENTRIES, |n| n.min(MAX_ENTRIES));
            assert_eq!(log.entries.len(), want, "entries read vs numrec");
            for e in log.entries.iter().filter_map(|e| e.err()) {
                let _ = e.to_string();
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
