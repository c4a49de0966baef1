//! The ownership model (src/model.rs) driven by fuzzer input: the engine, real discovery runs and
//! the real event mapping over the in-memory kernel, with reused controller numbers, cntlid
//! changes, removes read late, controllers made behind our back, ports down and logs changing.
//! The model panics, naming the invariant, when nothing-foreign-deleted, no-duplicate, liveness
//! (with --persistent) or no-leak-at-exit breaks.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Errors only: the info lines of every run would be most of the work (and gigabytes of output
// in a long run); what they format is fuzzed by the parser targets.
fuzz_target!(init: nvme_monitor::log::set_level(nvme_monitor::log::Level::Error), |data: &[u8]| {
    if let Some((&mode, ops)) = data.split_first() {
        nvme_monitor::model::run(ops, mode & 1 != 0);
    }
});
