//! The header fields a miner may change on its own, once the 2^32 nonces of a header are spent:
//! the extranonce2 inside the coinbase (Stratum V1), the version bits a pool allows to roll
//! (BIP310 negotiates the mask, BIP320 reserves bits 13..28 for it), and nTime within a window.
//!
//! Each roller is an iterator; running out of values is its `None`, never a panic, so the work
//! manager decides what exhaustion means (ask for a new job, wait for the next notify).

use bitcoin::hex::{DisplayHex, FromHex};

use super::job::JobError;

/// Largest extranonce2 a pool may ask for: the counter behind it is a `u64`. Pools use 2..8.
pub const MAX_EXTRANONCE2_SIZE: usize = 8;

/// The bytes the miner chooses inside the coinbase, between the pool's extranonce1 and coinb2.
///
/// The pool only sees bytes, so the byte order of the counter is ours to choose: little-endian,
/// as cgminer and ESP-Miner do (`17000000` is counter 0x17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Extranonce2 {
    bytes: [u8; MAX_EXTRANONCE2_SIZE],
    size: u8,
}

impl Extranonce2 {
    /// Counter `value` in `size` bytes. Errors if the size is 0 or above 8, or the value does not
    /// fit.
    pub fn new(value: u64, size: usize) -> Result<Self, JobError> {
        check_extranonce2_size(size)?;
        if size < MAX_EXTRANONCE2_SIZE && value >> (8 * size) != 0 {
            return Err(JobError::Extranonce2Overflow { value, size });
        }
        Ok(Extranonce2 {
            bytes: value.to_le_bytes(),
            size: size as u8,
        })
    }

    /// The extranonce2 with exactly these bytes (1..=8 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JobError> {
        check_extranonce2_size(bytes.len())?;
        let mut out = [0u8; MAX_EXTRANONCE2_SIZE];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Extranonce2 {
            bytes: out,
            size: bytes.len() as u8,
        })
    }

    /// Parse the hex form used in `mining.submit`.
    pub fn from_hex(hex: &str) -> Result<Self, JobError> {
        let bytes = Vec::<u8>::from_hex(hex).map_err(|_| JobError::BadHex {
            field: "extranonce2",
        })?;
        Self::from_bytes(&bytes)
    }

    /// The bytes that go into the coinbase.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.size)]
    }

    /// The bytes as lowercase hex, as `mining.submit` carries them.
    pub fn to_hex(&self) -> String {
        self.as_bytes().to_lower_hex_string()
    }

    /// The counter value (the bytes read little-endian).
    pub fn value(&self) -> u64 {
        u64::from_le_bytes(self.bytes)
    }

    pub fn size(&self) -> usize {
        usize::from(self.size)
    }
}

impl std::fmt::Display for Extranonce2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

pub(crate) fn check_extranonce2_size(size: usize) -> Result<(), JobError> {
    if size == 0 || size > MAX_EXTRANONCE2_SIZE {
        Err(JobError::Extranonce2Size(size))
    } else {
        Ok(())
    }
}

/// Every extranonce2 of one size, counting up from a start value; `None` once the space is spent
/// (2^(8·size) values: 4 bytes already give 2^32 headers of 2^32 nonces each).
#[derive(Clone, Debug)]
pub struct Extranonce2Roller {
    next: u128,
    end: u128,
    size: usize,
}

impl Extranonce2Roller {
    /// All values of `size` bytes, from 0.
    pub fn new(size: usize) -> Result<Self, JobError> {
        check_extranonce2_size(size)?;
        Ok(Extranonce2Roller {
            next: 0,
            end: 1u128 << (8 * size),
            size,
        })
    }

    /// The values from `start` (inclusive) to the end of its size's space.
    pub fn starting_at(start: Extranonce2) -> Self {
        Extranonce2Roller {
            next: u128::from(start.value()),
            end: 1u128 << (8 * start.size()),
            size: start.size(),
        }
    }

    /// How many values are left.
    pub fn remaining(&self) -> u128 {
        self.end - self.next
    }

    pub fn size(&self) -> usize {
        self.size
    }
}

impl Iterator for Extranonce2Roller {
    type Item = Extranonce2;

    fn next(&mut self) -> Option<Extranonce2> {
        if self.next >= self.end {
            return None;
        }
        let value = self.next as u64;
        self.next += 1;
        // The size was checked at construction and `value < end` keeps it in range.
        Extranonce2::new(value, self.size).ok()
    }
}

/// Every value of the version bits inside a BIP310 mask, starting with 0 (the pool's own
/// version); `None` after all 2^popcount(mask) values. With mask 0 it yields just 0.
#[derive(Clone, Debug)]
pub struct VersionRoller {
    mask: u32,
    next: Option<u32>,
}

impl VersionRoller {
    pub fn new(mask: u32) -> Self {
        VersionRoller {
            mask,
            next: Some(0),
        }
    }

    /// How many distinct version-bit values the mask allows.
    pub fn count_values(mask: u32) -> u64 {
        1u64 << mask.count_ones()
    }
}

impl Iterator for VersionRoller {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let cur = self.next?;
        // Next subset of the mask: fill the holes with ones so the carry skips them.
        let succ = (cur | !self.mask).wrapping_add(1) & self.mask;
        self.next = (succ != 0).then_some(succ);
        Some(cur)
    }
}

/// The nTime values a job accepts: from the pool's nTime up to `latest` (inclusive). Rolling
/// nTime changes only the header's second block, so it is the cheapest field to roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtimeWindow {
    pub earliest: u32,
    pub latest: u32,
}

impl NtimeWindow {
    /// From `ntime` to `ntime + roll` (saturating at u32::MAX).
    pub fn new(ntime: u32, roll: u32) -> Self {
        NtimeWindow {
            earliest: ntime,
            latest: ntime.saturating_add(roll),
        }
    }

    pub fn contains(&self, ntime: u32) -> bool {
        (self.earliest..=self.latest).contains(&ntime)
    }

    /// The nTime to use `elapsed_secs` after the job arrived, kept inside the window: this is
    /// how a miner tracks the clock without ever sending an nTime the pool refuses.
    pub fn at_elapsed(&self, elapsed_secs: u64) -> u32 {
        let t = u64::from(self.earliest).saturating_add(elapsed_secs);
        t.min(u64::from(self.latest)) as u32
    }

    /// Every nTime in the window, earliest first.
    pub fn iter(&self) -> impl Iterator<Item = u32> {
        self.earliest..=self.latest
    }
}

/// One choice of the rolled fields: with the job, it fixes a header up to its nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Roll {
    /// `None` for a header-only job (its merkle root is fixed: no coinbase to roll).
    pub extranonce2: Option<Extranonce2>,
    pub ntime: u32,
    /// The bits placed under the job's version mask (0 when the job does not roll versions).
    pub version_bits: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extranonce2_bytes_and_hex_round_trip() {
        let e = Extranonce2::new(0x17, 4).unwrap();
        assert_eq!(e.to_hex(), "17000000");
        assert_eq!(Extranonce2::from_hex("17000000").unwrap(), e);
        let e = Extranonce2::from_hex("00000001").unwrap();
        assert_eq!(e.value(), 0x0100_0000);
        assert_eq!(e.to_hex(), "00000001");
        assert_eq!(
            Extranonce2::new(u64::MAX, 8).unwrap().to_hex(),
            "ffffffffffffffff"
        );
        assert!(matches!(
            Extranonce2::new(0x1_0000, 2),
            Err(JobError::Extranonce2Overflow { .. })
        ));
        assert!(matches!(
            Extranonce2::new(0, 0),
            Err(JobError::Extranonce2Size(0))
        ));
        assert!(matches!(
            Extranonce2::from_hex("000000000000000000"),
            Err(JobError::Extranonce2Size(9))
        ));
        assert!(Extranonce2::from_hex("zz").is_err());
        assert!(Extranonce2::from_hex("").is_err());
    }

    #[test]
    fn extranonce2_roller_ends_with_none() {
        let all: Vec<u64> = Extranonce2Roller::new(1)
            .unwrap()
            .map(|e| e.value())
            .collect();
        assert_eq!(all, (0..256).collect::<Vec<_>>());
        let mut tail = Extranonce2Roller::starting_at(Extranonce2::new(u64::MAX - 1, 8).unwrap());
        assert_eq!(tail.remaining(), 2);
        assert_eq!(tail.next().map(|e| e.value()), Some(u64::MAX - 1));
        assert_eq!(tail.next().map(|e| e.value()), Some(u64::MAX));
        assert_eq!(tail.next(), None);
        assert_eq!(tail.next(), None);
        assert!(Extranonce2Roller::new(9).is_err());
    }

    #[test]
    fn version_roller_visits_every_subset_of_the_mask_once() {
        let mask = 0x1fffe000; // BIP320's 16 general-purpose bits
        let values: Vec<u32> = VersionRoller::new(mask).collect();
        assert_eq!(values.len() as u64, VersionRoller::count_values(mask));
        assert_eq!(values[0], 0);
        assert_eq!(values[1], 0x2000);
        assert!(values.iter().all(|v| v & !mask == 0));
        let mut sorted = values.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), values.len());
        assert_eq!(VersionRoller::new(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            VersionRoller::new(0b1010).collect::<Vec<_>>(),
            vec![0, 2, 8, 10]
        );
        assert_eq!(VersionRoller::new(u32::MAX).take(3).count(), 3);
    }

    #[test]
    fn ntime_window_clamps() {
        let w = NtimeWindow::new(100, 10);
        assert!(w.contains(100) && w.contains(110) && !w.contains(99) && !w.contains(111));
        assert_eq!(w.at_elapsed(3), 103);
        assert_eq!(w.at_elapsed(1_000), 110);
        assert_eq!(w.iter().count(), 11);
        assert_eq!(NtimeWindow::new(u32::MAX - 1, 10).latest, u32::MAX);
    }
}
