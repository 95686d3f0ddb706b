//! The mining kernel as the host sees it: the generated WGSL source, the per-row parameter block
//! it reads (mirroring `struct Row` in `shaders/sha256d.wgsl`), and the hit-buffer layout.

use bytemuck::{Pod, Zeroable};

use crate::pow::Precomputed;

/// The expanded kernel (build.rs unrolls the template `shaders/sha256d.wgsl` into this).
pub const SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/sha256d.wgsl"));

/// The build-time probe the kernel was generated with (`WGMINER_KERNEL_PROBE`, e.g. `rotshift`),
/// or None for a normal build. A probe kernel computes WRONG hashes on purpose: it exists to
/// measure what one kind of operation costs on a real GPU.
pub const PROBE: Option<&str> = match env!("WGMINER_KERNEL_PROBE_BUILT").as_bytes() {
    [] => None,
    _ => Some(env!("WGMINER_KERNEL_PROBE_BUILT")),
};

/// The shape of the nonce loop: both entry points of the module compute the same thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelShape {
    /// One nonce per loop iteration (entry point `search`).
    #[default]
    X1,
    /// Two nonces per loop iteration as two interleaved, independent SHA-256d chains (entry
    /// point `search_x2`): more instruction-level parallelism, more registers.
    X2,
}

impl KernelShape {
    pub const ALL: [KernelShape; 2] = [KernelShape::X1, KernelShape::X2];

    pub fn name(self) -> &'static str {
        match self {
            KernelShape::X1 => "x1",
            KernelShape::X2 => "x2",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The kernel's entry point for this shape.
    pub fn entry_point(self) -> &'static str {
        match self {
            KernelShape::X1 => "search",
            KernelShape::X2 => "search_x2",
        }
    }
}

impl std::fmt::Display for KernelShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rows per dispatch; `MAX_ROWS` in the shader must match.
pub const MAX_ROWS: usize = 256;

/// Most nonces in one row: keeps the row arithmetic far from u32 overflow. Small workgroups
/// lower the limit further (see [`super::dispatch::row_limit`]): a row may not need more
/// workgroups than the device allows per dispatch dimension (65,535 on most).
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

    #[test]
    fn every_shape_has_its_entry_point() {
        for k in KernelShape::ALL {
            assert!(SOURCE.contains(&format!("fn {}(", k.entry_point())), "{k}");
            assert_eq!(KernelShape::from_name(k.name()), Some(k));
        }
        assert_eq!(KernelShape::from_name("X2"), Some(KernelShape::X2));
        assert_eq!(KernelShape::from_name("x3"), None);
        // The two-chain body: both chains' names, interleaved.
        assert!(SOURCE.contains("let qe61_a") && SOURCE.contains("let qe61_b"));
        assert!(SOURCE.contains("let fin_lo_b"));
    }

    #[test]
    fn probe_kernel_is_labelled() {
        match PROBE {
            None => assert!(SOURCE.contains("| (") && !SOURCE.contains("PROBE KERNEL")),
            Some(p) => assert!(SOURCE.contains("PROBE KERNEL") && !p.is_empty()),
        }
    }
}
