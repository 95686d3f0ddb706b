//! Real mainnet headers: rebuild each work unit with the nonce cleared, scan a window of nonces
//! around the real one at the header's own target, and require the real nonce to be found and
//! every hit to verify. Also: the chain 0..438 links and meets its targets, and every retarget in
//! the data recomputes.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use crate::support::headers::{across_eras, real_headers, RealHeader};
use bitcoin::pow::CompactTarget;
use bitcoin::Network;
use wgminer::backend::{Backend, CpuBackend};
use wgminer::pow::scan::scan;
use wgminer::pow::{with_nonce, ScanPath};
use wgminer::work::{verify_hits, NonceRange, WorkUnit};

const WINDOW: u64 = 1 << 16;

/// The header with its nonce zeroed, the header's own target, and a window holding the real
/// nonce at `offset` from its start.
fn unit_for(h: &RealHeader, offset: u64, window: u64) -> WorkUnit {
    let cleared = with_nonce(&h.bytes, 0);
    let start = h.nonce().wrapping_sub(offset as u32);
    WorkUnit::new(cleared, h.header.target(), NonceRange::new(start, window))
}

#[test]
fn real_nonce_found_in_window_for_every_header() {
    let headers = real_headers();
    assert_eq!(headers.len(), 1337);
    let picked = across_eras(&headers, 1);
    assert!(picked.len() >= 200);
    let eras = |f: fn(u32) -> bool| picked.iter().filter(|h| f(h.version())).count();
    assert!(eras(|v| v < 4) > 100, "v1-v3 headers");
    assert!(eras(|v| v == 0x2000_0000) > 10, "plain BIP9 headers");
    assert!(
        eras(|v| v >> 29 == 1 && v & 0x1fff_e000 != 0) > 10,
        "version-rolled headers"
    );

    let mut cpu = CpuBackend::new(None, None).unwrap();
    let cancel = AtomicBool::new(false);
    // Different offsets put the real nonce at the start, the end and inside the window.
    let units: Vec<WorkUnit> = picked
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let offset = match i % 4 {
                0 => 0,
                1 => WINDOW - 1,
                _ => (u64::from(h.nonce()) * 7919) % WINDOW,
            };
            unit_for(h, offset, WINDOW)
        })
        .collect();
    let report = cpu.scan(&units, &cancel).unwrap();
    assert_eq!(report.hashes, WINDOW * units.len() as u64);
    let verified = verify_hits(&units, &report.hits);
    assert!(
        verified.hardware_errors.is_empty(),
        "{:?}",
        verified.hardware_errors
    );
    for (i, h) in picked.iter().enumerate() {
        let found: Vec<_> = verified.solutions.iter().filter(|s| s.unit == i).collect();
        assert!(
            found
                .iter()
                .any(|s| s.nonce == h.nonce() && s.hash.to_string() == h.hash),
            "height {:?}: real nonce {:#x} not found (got {:?})",
            h.height,
            h.nonce(),
            found
        );
    }
}

#[test]
fn every_cpu_path_finds_real_nonces() {
    let headers = real_headers();
    let picked = across_eras(&headers, 16);
    for path in ScanPath::available() {
        // The portable lane code is far slower than SHA-NI: give every path the same small window.
        for h in picked.iter().step_by(4) {
            let unit = unit_for(h, 1000, 4096);
            let mut hits = Vec::new();
            scan(
                path,
                &unit.pre,
                unit.nonces.start,
                unit.nonces.count,
                &mut hits,
            );
            assert!(
                hits.contains(&h.nonce()),
                "{path} missed height {:?}",
                h.height
            );
            for nonce in hits {
                unit.verify(nonce)
                    .unwrap_or_else(|e| panic!("{path}, height {:?}: {e}", h.height));
            }
        }
    }
}

#[test]
fn window_wraps_past_u32_max() {
    // A window that starts just below 2^32 and wraps to the real nonce's neighbourhood cannot
    // hold a mainnet nonce unless it is small, so use a window ending exactly on the real nonce
    // that crosses zero: start = nonce - (nonce + 100) wraps below zero.
    let headers = real_headers();
    let h = headers
        .iter()
        .filter(|h| h.nonce() < 1 << 24)
        .min_by_key(|h| h.nonce())
        .unwrap();
    let offset = u64::from(h.nonce()) + 100;
    let unit = unit_for(h, offset, offset + 1);
    assert!(
        unit.nonces.start > u32::MAX - 200,
        "window starts below 2^32"
    );
    let mut cpu = CpuBackend::new(Some(2), None).unwrap();
    let report = cpu
        .scan(std::slice::from_ref(&unit), &AtomicBool::new(false))
        .unwrap();
    let verified = verify_hits(std::slice::from_ref(&unit), &report.hits);
    assert!(verified.hardware_errors.is_empty());
    assert!(verified.solutions.iter().any(|s| s.nonce == h.nonce()));
}

#[test]
fn chain_0_to_438_links_and_meets_targets() {
    let headers = real_headers();
    let by_height: HashMap<u32, &RealHeader> = headers
        .iter()
        .filter_map(|h| Some((h.height?, h)))
        .collect();
    for height in 0..=438u32 {
        let h = by_height[&height];
        let hash = h
            .header
            .validate_pow(h.header.target())
            .expect("meets its own target");
        assert_eq!(hash.to_string(), h.hash);
        assert_eq!(wgminer::pow::block_hash(&h.bytes), hash);
        if height > 0 {
            assert_eq!(
                h.header.prev_blockhash,
                by_height[&(height - 1)].header.block_hash()
            );
        } else {
            assert_eq!(
                hash,
                bitcoin::constants::genesis_block(Network::Bitcoin).block_hash()
            );
        }
    }
}

#[test]
fn every_retarget_recomputes() {
    let headers = real_headers();
    let by_height: HashMap<u32, &RealHeader> = headers
        .iter()
        .filter_map(|h| Some((h.height?, h)))
        .collect();
    let mut retargets = 0;
    for h in &headers {
        let Some(height) = h.height.filter(|&x| x > 0 && x % 2016 == 0) else {
            continue;
        };
        let (Some(last), Some(first)) = (
            by_height.get(&(height - 1)),
            by_height.get(&(height - 2016)),
        ) else {
            continue;
        };
        // Bitcoin Core's pow.cpp: timespan from the first to the last block of the period.
        let timespan = (i64::from(last.header.time) - i64::from(first.header.time)).max(0) as u64;
        let expected =
            CompactTarget::from_next_work_required(last.header.bits, timespan, Network::Bitcoin);
        assert_eq!(expected, h.header.bits, "retarget at height {height}");
        retargets += 1;
    }
    assert_eq!(retargets, 413);
}
