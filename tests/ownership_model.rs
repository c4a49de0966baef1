//! The ownership model (src/model.rs) under hostile kernel sequences from a fixed PRNG: reused
//! numbers, cntlid changes, late removes, controllers behind our back. The `ownership` fuzz target
//! drives the same model with fuzzer input.

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn hostile_kernel_sequences_keep_the_ownership_invariants() {
    let mut runs = 0;
    for seed in 0..300u64 {
        let mut rng = Rng(seed * 2654435761 + 1);
        let input: Vec<u8> = (0..300).map(|_| rng.next() as u8).collect();
        runs += nvme_monitor::model::run(&input, seed % 3 != 0);
    }
    assert!(
        runs > 1000,
        "the sequences must actually run discoveries ({runs})"
    );
}
