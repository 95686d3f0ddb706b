//! Every CPU scan path against a brute-force `sha2` loop, on random headers and targets from
//! easy (regtest, pool difficulty far below 1) to hard.

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use wgminer::pow::scan::scan;
use wgminer::pow::{target_from_bits, target_from_difficulty, target_limbs, Precomputed, ScanPath};

/// sha256d with the `sha2` crate, compared as a little-endian 256-bit number with the target.
fn sha2_meets(header: &[u8; 80], nonce: u32, limbs: &[u32; 8]) -> bool {
    let mut h = *header;
    h[76..80].copy_from_slice(&nonce.to_le_bytes());
    let hash = Sha256::digest(Sha256::digest(h));
    for j in (0..8).rev() {
        let v = u32::from_le_bytes([
            hash[4 * j],
            hash[4 * j + 1],
            hash[4 * j + 2],
            hash[4 * j + 3],
        ]);
        if v != limbs[j] {
            return v < limbs[j];
        }
    }
    true
}

fn brute_force(header: &[u8; 80], limbs: &[u32; 8], start: u32, count: u64) -> Vec<u32> {
    (0..count)
        .map(|i| start.wrapping_add(i as u32))
        .filter(|&n| sha2_meets(header, n, limbs))
        .collect()
}

fn random_header(rng: &mut impl Rng) -> [u8; 80] {
    let mut h = [0u8; 80];
    rng.fill(&mut h[..]);
    h
}

fn check_all_paths(header: &[u8; 80], limbs: [u32; 8], start: u32, count: u64) -> usize {
    let expected = brute_force(header, &limbs, start, count);
    let pre = Precomputed::from_header(header, limbs);
    for path in ScanPath::available() {
        let mut hits = Vec::new();
        scan(path, &pre, start, count, &mut hits);
        hits.sort_unstable_by_key(|&n| n.wrapping_sub(start));
        assert_eq!(
            hits, expected,
            "path {path} on start {start:#x} count {count}"
        );
    }
    expected.len()
}

#[test]
fn final_state_matches_sha2() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for _ in 0..200 {
        let header = random_header(&mut rng);
        let nonce: u32 = rng.random();
        let pre = Precomputed::from_header(&header, [0; 8]);
        let mut h = header;
        h[76..80].copy_from_slice(&nonce.to_le_bytes());
        let expected = Sha256::digest(Sha256::digest(h));
        let got = wgminer::pow::sha256::state_bytes(&pre.final_state(nonce));
        assert_eq!(&got[..], &expected[..]);
    }
}

#[test]
fn regtest_target_many_hits() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let limbs = target_limbs(&target_from_bits(0x207fffff));
    let mut total = 0;
    for _ in 0..8 {
        let header = random_header(&mut rng);
        total += check_all_paths(&header, limbs, rng.random(), 3000 + rng.random_range(0..64));
    }
    assert!(
        total > 8 * 1000,
        "about half of all nonces meet regtest's target, got {total}"
    );
}

#[test]
fn pool_difficulties_below_one() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for diff in [1.0 / 1024.0, 1.0 / 65536.0, 0.25, 1e-6] {
        let limbs = target_limbs(&target_from_difficulty(diff).unwrap());
        let header = random_header(&mut rng);
        check_all_paths(&header, limbs, rng.random(), 20_000);
    }
}

#[test]
fn random_targets_and_wraparound() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    for _ in 0..16 {
        let header = random_header(&mut rng);
        // Random target: a random top limb position, random bits below.
        let mut limbs = [0u32; 8];
        let top = rng.random_range(4..8);
        limbs[top] = rng.random::<u32>() >> rng.random_range(0..32);
        for l in limbs.iter_mut().take(top) {
            *l = rng.random();
        }
        check_all_paths(
            &header,
            limbs,
            u32::MAX - rng.random_range(0..5000),
            10_000 + rng.random_range(0..17),
        );
    }
}

#[test]
fn hard_target_no_false_hits() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let limbs = target_limbs(&target_from_bits(0x1d00ffff));
    let header = random_header(&mut rng);
    assert_eq!(check_all_paths(&header, limbs, 0, 1 << 16), 0);
}

/// The CPU backend streams too: a hit leaves with the slice that found it. With one thread the
/// order is strict: the easy unit's slice reports its hits before the many slices of the long
/// unit, and the batch ends after all of them.
#[test]
fn a_hit_leaves_with_its_slice_not_with_its_batch() {
    use crate::support::feed::{RecordingFeed, Report};
    use wgminer::backend::{Backend, CpuBackend};
    use wgminer::work::{NonceRange, WorkUnit};
    let mut cpu = CpuBackend::new(Some(1), None).expect("cpu");
    let easy = WorkUnit::new(
        [5u8; 80],
        target_from_difficulty(1e-9).unwrap(),
        NonceRange::new(0, 4096),
    );
    let long = WorkUnit::new(
        [6u8; 80],
        bitcoin::pow::Target::ZERO,
        NonceRange::new(0, 1 << 20),
    );
    let feed = RecordingFeed::new(vec![vec![easy, long]]);
    cpu.mine(&feed).expect("mine");
    let reports = feed.reports();
    assert!(
        matches!(&reports[0], Report::Progress { hits, .. } if !hits.is_empty()),
        "{:?}",
        reports.first()
    );
    let slices = reports
        .iter()
        .filter(|r| matches!(r, Report::Progress { .. }))
        .count();
    assert!(slices >= 8, "{slices}");
    assert_eq!(
        reports.last(),
        Some(&Report::Finished {
            tag: 0,
            cancelled: false
        })
    );
}
