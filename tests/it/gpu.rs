//! The GPU backend against the CPU paths and a brute-force `sha2` loop, on a real Vulkan driver
//! (Mesa's lavapipe where there is no GPU). Under `CI=true` a missing adapter fails the tests;
//! elsewhere they are skipped with a note.
//!
//! The equivalence tests run every kernel this build carries (`kernels()`): the shipped x1 and
//! m4, and with `--features kernel-lab` the lab variants too (x2, m1..m3, m1x2..m4x2; not the
//! probes, whose hashes are wrong on purpose). The multiply-add variants exist for NVIDIA and
//! are slower on lavapipe, so the bigger tests give them fewer nonces (`is_mad`).

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::support::{feed, headers};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use wgminer::backend::gpu::{
    enumerate, GpuBackend, GpuOptions, KernelShape, MadLevel, Probe, KERNELS,
};
use wgminer::backend::Backend;
use wgminer::pow::scan::scan;
use wgminer::pow::{
    target_from_bits, target_from_difficulty, target_limbs, ScanPath, DIFF1_TARGET,
};
use wgminer::work::{verify_hits, Hit, NonceRange, WorkUnit};

/// The kernels whose hashes must match the CPU's: every one this build carries but the probes.
fn kernels() -> impl Iterator<Item = KernelShape> {
    KERNELS
        .iter()
        .map(|k| k.shape)
        .filter(|k| k.probe == Probe::None)
}

/// A multiply-add variant (m1..m4, m1x2..m4x2): tested on fewer nonces.
fn is_mad(kernel: KernelShape) -> bool {
    kernel.mad != MadLevel::None
}

/// Small first dispatches: lavapipe hashes a few MH/s, and the tests want several dispatches.
fn test_options(kernel: KernelShape) -> GpuOptions {
    GpuOptions {
        kernel,
        initial_dispatch_nonces: 1 << 14,
        ..GpuOptions::default()
    }
}

/// A GPU backend, or None (with a note) when there is no adapter outside CI.
fn open(options: GpuOptions) -> Option<GpuBackend> {
    match GpuBackend::first_available(options) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but the GPU backend is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("note: skipping GPU test: {e}");
            None
        }
    }
}

/// One backend per kernel shape shared by the tests (building a pipeline costs lavapipe
/// time); tests that need their own options or threads build their own.
fn shared(kernel: KernelShape) -> Option<MutexGuard<'static, GpuBackend>> {
    static SHARED: OnceLock<Vec<OnceLock<Option<Mutex<GpuBackend>>>>> = OnceLock::new();
    let slots = SHARED.get_or_init(|| KERNELS.iter().map(|_| OnceLock::new()).collect());
    let i = KERNELS
        .iter()
        .position(|k| k.shape == kernel)
        .expect("a kernel this build carries");
    slots[i]
        .get_or_init(|| open(test_options(kernel)).map(Mutex::new))
        .as_ref()
        .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

fn gpu_hits(backend: &mut GpuBackend, units: &[WorkUnit]) -> Vec<Hit> {
    let report = backend
        .scan(units, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("gpu scan ({}): {e}", describe(backend)));
    let requested: u64 = units.iter().map(|u| u.nonces.count).sum();
    assert_eq!(report.hashes, requested);
    assert!(!report.cancelled);
    let mut hits = report.hits;
    hits.sort_unstable();
    hits
}

fn cpu_hits(units: &[WorkUnit]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let mut found = Vec::new();
        scan(
            ScanPath::best(),
            &u.pre,
            u.nonces.start,
            u.nonces.count,
            &mut found,
        );
        hits.extend(found.into_iter().map(|nonce| Hit { unit: i, nonce }));
    }
    hits.sort_unstable();
    hits
}

/// sha256d with the `sha2` crate, compared with the target as a little-endian number.
fn brute_force(units: &[WorkUnit]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let limbs = target_limbs(&u.target);
        for k in 0..u.nonces.count {
            let nonce = u.nonces.start.wrapping_add(k as u32);
            let hash = Sha256::digest(Sha256::digest(u.header_with_nonce(nonce)));
            let meets = (0..8)
                .rev()
                .map(|j| {
                    u32::from_le_bytes([
                        hash[4 * j],
                        hash[4 * j + 1],
                        hash[4 * j + 2],
                        hash[4 * j + 3],
                    ])
                })
                .zip(limbs.iter().rev())
                .find(|(v, l)| v != *l)
                .is_none_or(|(v, l)| v < *l);
            if meets {
                hits.push(Hit { unit: i, nonce });
            }
        }
    }
    hits.sort_unstable();
    hits
}

/// "kernel x2, 256 x 8" for failure messages.
fn describe(backend: &GpuBackend) -> String {
    let t = backend.tuning();
    format!(
        "kernel {}, {} x {}",
        t.kernel, t.workgroup_size, t.nonces_per_thread
    )
}

/// GPU == CPU == sha2, and every hit verifies.
fn check(backend: &mut GpuBackend, units: &[WorkUnit]) -> Vec<Hit> {
    let gpu = gpu_hits(backend, units);
    let what = describe(backend);
    assert_eq!(gpu, cpu_hits(units), "GPU and CPU disagree ({what})");
    assert_eq!(gpu, brute_force(units), "GPU and sha2 disagree ({what})");
    let verified = verify_hits(units, &gpu);
    assert!(
        verified.hardware_errors.is_empty(),
        "{:?}",
        verified.hardware_errors
    );
    gpu
}

/// The x2 loop (a lab variant) with multiply-add level `mad`.
fn lanes_x2(mad: MadLevel) -> KernelShape {
    KernelShape::new(wgminer::backend::gpu::Lanes::X2, mad)
}

fn random_header(rng: &mut impl Rng) -> [u8; 80] {
    let mut h = [0u8; 80];
    rng.fill(&mut h[..]);
    h
}

#[test]
fn regtest_target_many_hits_in_one_dispatch() {
    for kernel in kernels() {
        regtest_target_many_hits(kernel);
    }
}

fn regtest_target_many_hits(kernel: KernelShape) {
    let Some(mut gpu) = shared(kernel) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let target = target_from_bits(0x207fffff);
    let units: Vec<WorkUnit> = (0..6)
        .map(|_| {
            WorkUnit::new(
                random_header(&mut rng),
                target,
                NonceRange::new(rng.random(), 1500 + rng.random_range(0..100)),
            )
        })
        .collect();
    let before = gpu.stats();
    let hits = check(&mut gpu, &units);
    assert!(
        hits.len() > 6 * 600,
        "about half of all nonces meet regtest's target, got {}",
        hits.len()
    );
    assert_eq!(
        gpu.stats().dispatches - before.dispatches,
        1,
        "six small units share one dispatch"
    );
    assert!(
        (0..6).all(|u| hits.iter().any(|h| h.unit == u)),
        "hits attributed to every unit"
    );
}

#[test]
fn pool_difficulties_below_one_and_random_targets() {
    for kernel in kernels() {
        pool_difficulties(kernel);
    }
}

fn pool_difficulties(kernel: KernelShape) {
    let Some(mut gpu) = shared(kernel) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut units = Vec::new();
    // Pool difficulty d is met by one nonce in 2^32 / d.
    for diff in [1.0 / 1024.0, 1.0 / 65536.0, 0.25, 1e-6, 2f64.powi(-24)] {
        let target = target_from_difficulty(diff).expect("positive difficulty");
        units.push(WorkUnit::new(
            random_header(&mut rng),
            target,
            NonceRange::new(rng.random(), 12_000),
        ));
    }
    // Random targets whose top limb sits anywhere in the upper half: the filter and the full
    // comparison in the kernel both matter.
    for _ in 0..4 {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes[..]);
        let top = rng.random_range(20..32);
        for b in bytes.iter_mut().skip(top + 1) {
            *b = 0;
        }
        bytes[top] >>= rng.random_range(0..8);
        let target = bitcoin::pow::Target::from_le_bytes(bytes);
        units.push(WorkUnit::new(
            random_header(&mut rng),
            target,
            NonceRange::new(rng.random(), 4000),
        ));
    }
    let hits = check(&mut gpu, &units);
    assert!(
        hits.iter().filter(|h| h.unit == 4).count() > 12,
        "difficulty 2^-24 over 12k nonces: ~47 hits"
    );
}

#[test]
fn hard_target_no_false_hits() {
    for kernel in kernels() {
        let Some(mut gpu) = shared(kernel) else {
            return;
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let nonces = if is_mad(kernel) { 1 << 15 } else { 1 << 18 };
        let unit = WorkUnit::new(
            random_header(&mut rng),
            DIFF1_TARGET,
            NonceRange::new(rng.random(), nonces),
        );
        let gpu_found = gpu_hits(&mut gpu, std::slice::from_ref(&unit));
        assert_eq!(gpu_found, cpu_hits(std::slice::from_ref(&unit)), "{kernel}");
        assert!(
            gpu_found.is_empty(),
            "a difficulty-1 hit in 2^18 nonces has odds of 1 in 16,000"
        );
    }
}

#[test]
fn nonce_range_wraps_past_u32_max() {
    for kernel in kernels() {
        let Some(mut gpu) = shared(kernel) else {
            return;
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let target = target_from_difficulty(2f64.powi(-26)).expect("positive difficulty"); // 1 in 64
        let units: Vec<WorkUnit> = (0..3)
            .map(|i| {
                WorkUnit::new(
                    random_header(&mut rng),
                    target,
                    NonceRange::new(u32::MAX - 1000 * i, 2500 + 7 * u64::from(i)),
                )
            })
            .collect();
        let hits = check(&mut gpu, &units);
        assert!(
            hits.iter().any(|h| h.nonce < 1000) && hits.iter().any(|h| h.nonce > u32::MAX - 3000)
        );
    }
}

/// Up to `per_era` headers from each era of version numbers, spread across the file.
fn headers_across_eras(per_era: usize) -> Vec<headers::RealHeader> {
    let era = |version: u32| match version {
        1 => 0,
        2..=4 => 1,
        v if v & 0xe000_0000 == 0x2000_0000 && v & 0x1fff_e000 == 0 => 2, // BIP9
        v if v & 0xe000_0000 == 0x2000_0000 => 3,                         // BIP320 version rolling
        _ => 4,
    };
    let mut by_era: Vec<Vec<headers::RealHeader>> = (0..5).map(|_| Vec::new()).collect();
    for h in headers::real_headers() {
        by_era[era(h.version())].push(h);
    }
    let mut out = Vec::new();
    for group in by_era {
        let step = (group.len() / per_era).max(1);
        out.extend(group.into_iter().step_by(step).take(per_era));
    }
    out
}

#[test]
fn real_headers_found_in_window() {
    for kernel in kernels() {
        real_headers_in_window(kernel);
    }
}

fn real_headers_in_window(kernel: KernelShape) {
    let Some(mut gpu) = shared(kernel) else {
        return;
    };
    // The multiply-add variants: fewer headers and smaller windows.
    let (per_era, window) = if is_mad(kernel) {
        (4, 1 << 9)
    } else {
        (16, 1 << 12)
    };
    let headers = headers_across_eras(per_era);
    assert!(
        headers.len() >= 3 * per_era,
        "only {} headers",
        headers.len()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut units = Vec::new();
    let mut expect = Vec::new();
    for h in &headers {
        let (bytes, nonce) = (h.bytes, h.nonce());
        let bits = h.header.bits.to_consensus();
        let start = nonce.wrapping_sub(rng.random_range(0..window));
        let unit = WorkUnit::new(
            bytes,
            target_from_bits(bits),
            NonceRange::new(start, u64::from(window)),
        );
        expect.push((units.len(), nonce, h.hash.clone(), h.height));
        units.push(unit);
    }
    // Wrap-around on real data: no real nonce lies near u32::MAX, so scan the first header
    // across the wrap with an easy target and compare with the CPU.
    let mut wrapped = units[0].with_nonces(NonceRange::new(u32::MAX - 1500, 3000));
    wrapped = WorkUnit::new(
        wrapped.header,
        target_from_difficulty(2f64.powi(-25)).expect("positive"),
        wrapped.nonces,
    );
    units.push(wrapped);

    let hits = gpu_hits(&mut gpu, &units);
    assert_eq!(hits, cpu_hits(&units));
    let verified = verify_hits(&units, &hits);
    assert!(
        verified.hardware_errors.is_empty(),
        "{:?}",
        verified.hardware_errors
    );
    for (unit, nonce, hash, height) in expect {
        let found = verified
            .solutions
            .iter()
            .find(|s| s.unit == unit && s.nonce == nonce);
        let found =
            found.unwrap_or_else(|| panic!("block {height:?}: real nonce {nonce:#x} not found"));
        assert_eq!(
            found.hash.to_string(),
            hash,
            "block {height:?}, kernel {kernel}"
        );
    }
    assert!(
        verified.solutions.iter().any(|s| s.unit == units.len() - 1),
        "hits across the wrap"
    );
}

#[test]
fn hit_buffer_overflow_loses_nothing() {
    // The overflow path is the host's; the multiply-add variants share it (m4 stands for them).
    for kernel in kernels().filter(|k| k.mad == MadLevel::None || *k == KernelShape::M4) {
        hit_buffer_overflow(kernel);
    }
}

fn hit_buffer_overflow(kernel: KernelShape) {
    let Some(mut gpu) = open(GpuOptions {
        hit_capacity: 4,
        ..test_options(kernel)
    }) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let unit = WorkUnit::new(
        random_header(&mut rng),
        target_from_bits(0x207fffff),
        NonceRange::new(rng.random(), 3000),
    );
    let hits = check(&mut gpu, std::slice::from_ref(&unit));
    assert!(hits.len() > 1000);
    let stats = gpu.stats();
    assert!(
        stats.overflows >= 1 && stats.rescanned_nonces >= 3000,
        "{stats:?}"
    );
    // A dispatch under the capacity is read from the GPU, not re-scanned.
    let hard = WorkUnit::new(unit.header, DIFF1_TARGET, NonceRange::new(0, 4096));
    assert!(gpu_hits(&mut gpu, std::slice::from_ref(&hard)).is_empty());
    assert_eq!(gpu.stats().overflows, stats.overflows);
}

#[test]
fn two_backends_on_two_threads() {
    if enumerate().is_empty() && open(test_options(KernelShape::X1)).is_none() {
        return;
    }
    // One thread per kernel (x1 and m4, the two shipped ones).
    let workers: Vec<_> = (0..2u64)
        .map(|seed| {
            std::thread::spawn(move || {
                let kernel = KERNELS[seed as usize % KERNELS.len()].shape;
                let mut gpu = open(test_options(kernel)).expect("adapter seen a moment ago");
                let mut rng = rand::rngs::StdRng::seed_from_u64(100 + seed);
                let target = target_from_difficulty(2f64.powi(-20)).expect("positive difficulty"); // 1 in 4096
                let units: Vec<WorkUnit> = (0..3)
                    .map(|_| {
                        WorkUnit::new(
                            random_header(&mut rng),
                            target,
                            NonceRange::new(rng.random(), 20_000),
                        )
                    })
                    .collect();
                let hits = gpu_hits(&mut gpu, &units);
                assert_eq!(hits, cpu_hits(&units));
                assert!(gpu.stats().dispatches >= 2, "several dispatches in flight");
                hits.len()
            })
        })
        .collect();
    for w in workers {
        assert!(w.join().expect("worker thread") > 0);
    }
}

/// The probes run (their speed is what they are for) and, as built, get hashes wrong: a probe
/// that agreed with the CPU would no longer measure what it removes.
#[cfg(feature = "kernel-lab")]
#[test]
fn probe_kernels_run_and_disagree() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let target = target_from_bits(0x207fffff); // about half of all nonces
    let unit = WorkUnit::new(
        random_header(&mut rng),
        target,
        NonceRange::new(rng.random(), 2000),
    );
    let units = std::slice::from_ref(&unit);
    for probe in KERNELS.iter().filter(|k| k.shape.probe != Probe::None) {
        let Some(mut gpu) = open(test_options(probe.shape)) else {
            return;
        };
        assert_ne!(gpu_hits(&mut gpu, units), cpu_hits(units), "{}", probe.name);
    }
}

#[test]
fn cancelled_scan_stops_early() {
    let Some(mut gpu) = shared(KernelShape::X1) else {
        return;
    };
    let unit = WorkUnit::new([3u8; 80], DIFF1_TARGET, NonceRange::FULL);
    let report = gpu
        .scan(std::slice::from_ref(&unit), &AtomicBool::new(true))
        .expect("scan");
    assert!(report.cancelled);
    assert_eq!(report.hashes, 0);
    assert!(report.hits.is_empty());
}

#[test]
fn adapters_are_listed() {
    let all = enumerate();
    if all.is_empty() {
        assert!(open(test_options(KernelShape::X1)).is_none());
        return;
    }
    for (i, a) in all.iter().enumerate() {
        let s = a.summary();
        assert_eq!(s.index, i + 1, "index 0 is the CPU");
        assert!(!s.name.is_empty() && !s.backend.is_empty());
    }
}

/// Workgroup sizes and nonce counts that leave ragged ends: odd nonces per invocation (x2 hashes
/// one pair too many and must not report its second nonce), one-invocation workgroups, and rows
/// whose lengths are not a multiple of anything.
#[test]
fn ragged_geometries_match_the_cpu() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let target = target_from_difficulty(2f64.powi(-25)).expect("positive difficulty"); // 1 in 128
    let units: Vec<WorkUnit> = (0..4)
        .map(|i| {
            WorkUnit::new(
                random_header(&mut rng),
                target,
                NonceRange::new(rng.random(), 1 + 997 * i),
            )
        })
        .collect();
    // The multiply-add variants share the loops of x1 and x2: m4 and m4x2 stand for them.
    let mut shapes = vec![KernelShape::X1, KernelShape::M4];
    if cfg!(feature = "kernel-lab") {
        shapes.extend([lanes_x2(MadLevel::None), lanes_x2(MadLevel::M4)]);
    }
    for kernel in shapes {
        for (workgroup_size, nonces_per_thread) in [(1, 1), (7, 3), (64, 2)] {
            let Some(mut gpu) = open(GpuOptions {
                workgroup_size,
                nonces_per_thread,
                ..test_options(kernel)
            }) else {
                return;
            };
            let hits = check(&mut gpu, &units);
            assert!(hits.len() > 10, "{}", describe(&gpu));
        }
    }
}

/// The H100 failure: 64 invocations x 1 nonce per workgroup and rows of up to 2^24 nonces asked
/// for 65,536 workgroups along x, over the 65,535 per dimension that devices allow (lavapipe
/// too). Each scan here is one dispatch that needs more than 65,535 workgroups' worth of nonces.
#[test]
fn small_workgroups_stay_within_the_dispatch_limit() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let target = target_from_difficulty(2f64.powi(-20)).expect("positive difficulty"); // 1 in 4096
    let mut cases = vec![(KernelShape::X1, 64, 1, 64 * 65_536 + 100)];
    if cfg!(feature = "kernel-lab") {
        cases.push((lanes_x2(MadLevel::None), 1, 1, 2 * 65_536 + 1));
    }
    for (kernel, workgroup_size, nonces_per_thread, nonces) in cases {
        let per_group = u64::from(workgroup_size * nonces_per_thread);
        assert!(
            nonces / per_group > 65_535,
            "the case must need more groups"
        );
        let Some(mut gpu) = open(GpuOptions {
            kernel,
            workgroup_size,
            nonces_per_thread,
            initial_dispatch_nonces: nonces,
            ..GpuOptions::default()
        }) else {
            return;
        };
        let unit = WorkUnit::new(
            random_header(&mut rng),
            target,
            NonceRange::new(rng.random(), nonces),
        );
        let units = std::slice::from_ref(&unit);
        let hits = gpu_hits(&mut gpu, units);
        assert_eq!(hits, cpu_hits(units), "{}", describe(&gpu));
        assert!(!hits.is_empty());
        assert_eq!(
            gpu.stats().dispatches,
            1,
            "one dispatch, several rows ({})",
            describe(&gpu)
        );
    }
}

/// A hit in the first dispatch of a long batch reaches the feed when that dispatch completes,
/// long before the batch ends (order of events: the hit's report comes first, then the many
/// dispatches of the rest of the batch, then the end of the batch); and the GPU takes the next
/// batch before the last dispatch of the current one is read back (two in flight throughout).
#[test]
fn a_hit_leaves_with_its_dispatch_not_with_its_batch() {
    let Some(mut gpu) = open(test_options(KernelShape::X1)) else {
        return;
    };
    // Unit 0: an easy target over a few nonces (hits certain); unit 1: many nonces that no hash
    // can meet (target 0 is met by no hash).
    let easy = WorkUnit::new(
        [5u8; 80],
        target_from_difficulty(1e-9).unwrap(),
        NonceRange::new(0, 4096),
    );
    let never = bitcoin::pow::Target::ZERO;
    let long = WorkUnit::new([6u8; 80], never, NonceRange::new(0, 1 << 23));
    let second = WorkUnit::new([7u8; 80], never, NonceRange::new(0, 1 << 16));
    let feed = feed::RecordingFeed::new(vec![vec![easy.clone(), long], vec![second]]);
    gpu.mine(&feed).expect("mine");
    let reports = feed.reports();
    use feed::Report;
    let first_hit = reports
        .iter()
        .position(|r| matches!(r, Report::Progress { hits, .. } if !hits.is_empty()))
        .expect("the easy unit's hits");
    let finished_0 = reports
        .iter()
        .position(|r| {
            *r == Report::Finished {
                tag: 0,
                cancelled: false,
            }
        })
        .expect("batch 0 finished");
    let dispatches_0 = reports
        .iter()
        .filter(|r| matches!(r, Report::Progress { tag: 0, .. }))
        .count();
    assert_eq!(
        first_hit, 0,
        "the first dispatch carries the hits: {reports:?}"
    );
    assert!(
        dispatches_0 >= 4,
        "a long batch of many dispatches: {dispatches_0}"
    );
    assert!(first_hit + dispatches_0 <= finished_0 + 1);
    // Every hit is real, and every one of unit 0's hits came in that first report.
    let Report::Progress { hits, .. } = &reports[first_hit] else {
        unreachable!()
    };
    assert_eq!(hits, &cpu_hits(std::slice::from_ref(&easy)));
    // Batch 1 was taken while batch 0 still had a dispatch in flight: its first report comes
    // right after batch 0's last dispatch, with nothing idle between (or even before it ends).
    let first_of_1 = reports
        .iter()
        .position(|r| matches!(r, Report::Progress { tag: 1, .. }))
        .expect("batch 1 hashed");
    assert!(first_of_1 <= finished_0 + 1, "{reports:?}");
    let hashed: u64 = reports
        .iter()
        .map(|r| match r {
            Report::Progress { hashes, .. } => *hashes,
            Report::Finished { .. } => 0,
        })
        .sum();
    assert_eq!(hashed, 4096 + (1 << 23) + (1 << 16));
}
