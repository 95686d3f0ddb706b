//! The mining kernel as the host sees it: the generated WGSL source, the per-row parameter block
//! it reads (mirroring `struct Row` in `shaders/sha256d.wgsl`), and the hit-buffer layout.

use bytemuck::{Pod, Zeroable};

use crate::pow::Precomputed;

/// The expanded kernel (build.rs unrolls the template `shaders/sha256d.wgsl` into this).
pub const SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/sha256d.wgsl"));

/// The multiply-add variants of the kernel, m1..m4 (see `Mad` in build/wgsl_gen.rs): the same
/// module with more and more additions written `x * one + y`, `one` a runtime 1 from the row
/// (`Row::knobs`), so NVIDIA compilers can put them on the FMA pipe as IMAD.
pub const SOURCE_MAD: [&str; 4] = [
    include_str!(concat!(env!("OUT_DIR"), "/sha256d_m1.wgsl")),
    include_str!(concat!(env!("OUT_DIR"), "/sha256d_m2.wgsl")),
    include_str!(concat!(env!("OUT_DIR"), "/sha256d_m3.wgsl")),
    include_str!(concat!(env!("OUT_DIR"), "/sha256d_m4.wgsl")),
];

/// The build-time probe the kernel was generated with (`WGMINER_KERNEL_PROBE`, e.g. `rotshift`),
/// or None for a normal build. A probe kernel computes WRONG hashes on purpose: it exists to
/// measure what one kind of operation costs on a real GPU.
pub const PROBE: Option<&str> = match env!("WGMINER_KERNEL_PROBE_BUILT").as_bytes() {
    [] => None,
    _ => Some(env!("WGMINER_KERNEL_PROBE_BUILT")),
};

/// The kernel to run: the shape of the nonce loop (x1 or x2, the module's two entry points) and
/// the module (the normal kernel, or a multiply-add variant m1..m4). All compute the same thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelShape {
    /// One nonce per loop iteration (entry point `search`).
    #[default]
    X1,
    /// Two nonces per loop iteration as two interleaved, independent SHA-256d chains (entry
    /// point `search_x2`): more instruction-level parallelism, more registers.
    X2,
    /// x1 with one of T1's additions as a multiply-add: T1 = Σ1 * one + (Ch + h + W + K).
    M1,
    /// m1, and a = Σ0 * one + (T1 + Maj).
    M2,
    /// m2, and each message word σ1 * one + (W[t-7] + σ0 + W[t-16]).
    M3,
    /// Every round and schedule addition of a computed per-nonce term as a multiply-add:
    /// T1 = Σ1 * one + (Ch * one + (h + W + K)), e = T1 * one + d,
    /// a = Σ0 * one + (Maj * one + T1), W = σ1 * one + (σ0 * one + (W[t-7] * one + W[t-16])).
    M4,
    /// m1 with the x2 loop.
    M1X2,
    /// m2 with the x2 loop.
    M2X2,
    /// m3 with the x2 loop.
    M3X2,
    /// m4 with the x2 loop.
    M4X2,
}

impl KernelShape {
    pub const ALL: [KernelShape; 10] = [
        KernelShape::X1,
        KernelShape::X2,
        KernelShape::M1,
        KernelShape::M2,
        KernelShape::M3,
        KernelShape::M4,
        KernelShape::M1X2,
        KernelShape::M2X2,
        KernelShape::M3X2,
        KernelShape::M4X2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KernelShape::X1 => "x1",
            KernelShape::X2 => "x2",
            KernelShape::M1 => "m1",
            KernelShape::M2 => "m2",
            KernelShape::M3 => "m3",
            KernelShape::M4 => "m4",
            KernelShape::M1X2 => "m1x2",
            KernelShape::M2X2 => "m2x2",
            KernelShape::M3X2 => "m3x2",
            KernelShape::M4X2 => "m4x2",
        }
    }

    /// Two nonces per loop iteration (entry point `search_x2`).
    pub fn is_x2(self) -> bool {
        matches!(
            self,
            KernelShape::X2
                | KernelShape::M1X2
                | KernelShape::M2X2
                | KernelShape::M3X2
                | KernelShape::M4X2
        )
    }

    /// Which multiply-add variant (1..=4), or None for the normal kernel.
    pub fn mad_level(self) -> Option<usize> {
        match self {
            KernelShape::X1 | KernelShape::X2 => None,
            KernelShape::M1 | KernelShape::M1X2 => Some(1),
            KernelShape::M2 | KernelShape::M2X2 => Some(2),
            KernelShape::M3 | KernelShape::M3X2 => Some(3),
            KernelShape::M4 | KernelShape::M4X2 => Some(4),
        }
    }

    /// The WGSL module holding this kernel's entry point.
    pub fn source(self) -> &'static str {
        match self.mad_level() {
            None => SOURCE,
            Some(m) => SOURCE_MAD[m - 1],
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The kernel's entry point for this shape.
    pub fn entry_point(self) -> &'static str {
        if self.is_x2() {
            "search_x2"
        } else {
            "search"
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
/// not depend on the nonce. Field order and size match the shader's `struct Row` (9 x `vec4<u32>`).
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
    /// Always [1, 0, 0, 0]: the runtime 1 (`one`) of the multiply-add kernels, then reserved.
    pub knobs: [u32; 4],
}

impl Row {
    pub fn new(pre: &Precomputed, start: u32, count: u32) -> Self {
        Row {
            midstate: pre.midstate,
            state3: pre.state3,
            target: pre.target_limbs,
            sched: [pre.w16, pre.w17, pre.w18_base, pre.w19_base],
            misc: [pre.round3_t1, pre.round3_t2, start, count],
            knobs: [1, 0, 0, 0],
        }
    }
}

/// Size of the uniform block holding `MAX_ROWS` rows.
pub const ROWS_BYTES: u64 = (MAX_ROWS * std::mem::size_of::<Row>()) as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_is_nine_vec4() {
        assert_eq!(std::mem::size_of::<Row>(), 144);
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
            assert!(
                k.source().contains(&format!("fn {}(", k.entry_point())),
                "{k}"
            );
            assert_eq!(KernelShape::from_name(k.name()), Some(k));
        }
        assert_eq!(KernelShape::from_name("X2"), Some(KernelShape::X2));
        assert_eq!(KernelShape::from_name("x3"), None);
        assert_eq!(KernelShape::from_name("M4x2"), Some(KernelShape::M4X2));
        // The two-chain body: both chains' names, interleaved.
        assert!(SOURCE.contains("let qe61_a") && SOURCE.contains("let qe61_b"));
        assert!(SOURCE.contains("let fin_lo_b"));
    }

    #[test]
    fn mad_variants_multiply_by_the_runtime_one() {
        // The normal kernel mentions the form only in comments.
        assert!(!SOURCE.contains("let one"));
        let mut previous = SOURCE.matches("* one +").count();
        for (i, src) in SOURCE_MAD.iter().enumerate() {
            assert!(src.contains("let one = rows[ri].knobs.x;"), "m{}", i + 1);
            // Each level writes more additions as multiply-adds than the one before.
            let mads = src.matches("* one +").count();
            assert!(mads > previous, "m{}: {mads} multiply-adds", i + 1);
            previous = mads;
        }
    }

    #[test]
    fn probe_kernel_is_labelled() {
        match PROBE {
            None => assert!(SOURCE.contains("| (") && !SOURCE.contains("PROBE KERNEL")),
            Some(p) => assert!(SOURCE.contains("PROBE KERNEL") && !p.is_empty()),
        }
    }
}
