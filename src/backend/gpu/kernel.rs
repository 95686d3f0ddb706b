//! The mining kernel as the host sees it: the generated WGSL source, the per-row parameter block
//! it reads (mirroring `struct Row` in `shaders/sha256d.wgsl`), and the hit-buffer layout.

use bytemuck::{Pod, Zeroable};

use crate::pow::Precomputed;

/// The expanded kernel (build.rs unrolls the template `shaders/sha256d.wgsl` into this).
pub const SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/sha256d.wgsl"));

/// The kernel's entry point.
pub const ENTRY_POINT: &str = "search";

/// Rows per dispatch; `MAX_ROWS` in the shader must match.
pub const MAX_ROWS: usize = 256;

/// Most nonces in one row. Keeps the workgroup count along a row far below the 65,535 per
/// dimension that every adapter supports, and the row arithmetic far from u32 overflow.
pub const MAX_ROW_NONCES: u64 = 1 << 24;

/// Bytes before the hit records in the hit buffer: the atomic counter and a reserved word.
pub const HITS_HEADER_BYTES: u64 = 8;

/// Bytes per hit record: (row, nonce).
pub const HIT_BYTES: u64 = 8;

/// One row of a dispatch: a run of nonces of one work unit and everything about it that does
/// not depend on the nonce. Field order and size match the shader's `struct Row` (8 x vec4<u32>).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Row {
    pub midstate: [u32; 8],
    pub state3: [u32; 8],
    pub target: [u32; 8],
    /// W16, W17, W18 without σ0(W3), W19 without W3.
    pub sched: [u32; 4],
    /// Round 3's T1 and T2 without W3, the first nonce, the nonce count.
    pub misc: [u32; 4],
}

impl Row {
    pub fn new(pre: &Precomputed, start: u32, count: u32) -> Self {
        Row {
            midstate: pre.midstate,
            state3: pre.state3,
            target: pre.target_limbs,
            sched: [pre.w16, pre.w17, pre.w18_base, pre.w19_base],
            misc: [pre.round3_t1, pre.round3_t2, start, count],
        }
    }
}

/// Size of the uniform block holding `MAX_ROWS` rows.
pub const ROWS_BYTES: u64 = (MAX_ROWS * std::mem::size_of::<Row>()) as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_is_eight_vec4() {
        assert_eq!(std::mem::size_of::<Row>(), 128);
        assert!(SOURCE.contains(&format!("const MAX_ROWS: u32 = {MAX_ROWS}u;")));
    }

    #[test]
    fn kernel_is_unrolled() {
        // Every round constant appears inline (folded with a constant message word where the
        // word is known), and there is no round loop.
        assert!(
            SOURCE.contains("0xc67178f2u"),
            "K63 inline in the finish path"
        );
        assert!(SOURCE.contains("let qe61"));
        assert!(!SOURCE.contains("//@generate"));
    }
}
