//! What the fuzz targets share: how many inputs a run feeds, and the fixed seed that makes a CI
//! run repeat the last one exactly. See docs/FUZZING.md.

/// The seed every fuzz target starts from (its own stream is this plus a per-target offset), so
/// a failure in CI is reproduced by running the same test again.
pub const SEED: u64 = 0x5747_4d49_4e45_5231; // "WGMINER1"

/// `ci` inputs, times `WGMINER_FUZZ_CASES` when set (a whole number: `WGMINER_FUZZ_CASES=20`
/// runs twenty times CI's inputs, each from the same seed, so the first `ci` are CI's own).
pub fn cases(ci: u32) -> u32 {
    let scale = std::env::var("WGMINER_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    ci.saturating_mul(scale)
}

/// The seed for one target: `WGMINER_FUZZ_SEED` when set (to explore beyond CI's inputs), else
/// [`SEED`] plus `offset`.
pub fn seed(offset: u64) -> u64 {
    std::env::var("WGMINER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(SEED)
        .wrapping_add(offset)
}
