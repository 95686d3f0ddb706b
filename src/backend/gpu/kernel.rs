//! The mining kernel as the host sees it: the generated WGSL source, the per-row parameter block
//! it reads (mirroring `struct Row` in `shaders/sha256d.wgsl`), and the hit-buffer layout.

use bytemuck::{Pod, Zeroable};

use crate::pow::Precomputed;

pub use super::shape::{KernelShape, Lanes, MadLevel, ParseKernelShapeError, Probe};

/// One kernel this binary carries, as build.rs listed it (`OUT_DIR/kernels.rs`).
#[derive(Debug)]
pub struct KernelEntry {
    /// The name users type (`--gpu-kernel`): `shape`'s `Display`.
    pub name: &'static str,
    pub shape: KernelShape,
    /// The WGSL entry point; the module holds no other.
    pub entry_point: &'static str,
    /// The generated WGSL module: build.rs expanded it from `shaders/sha256d.wgsl` and naga
    /// validated it.
    pub source: &'static str,
    /// A lab variant (`--features kernel-lab`): measured, not shipped.
    pub lab: bool,
}

// `KERNELS` (the shipped variants first, then the lab ones in a `kernel-lab` build) and
// `LAB_LEFT_OUT` (the lab variants this build leaves out), both from build.rs's one list.
include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// Why a kernel name cannot run in this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    #[error("unknown GPU kernel '{name}' (expected one of: {built})")]
    Unknown { name: String, built: String },
    #[error(
        "kernel {name} is a lab variant: build with `--features kernel-lab` to use it; \
         shipped: {shipped}"
    )]
    LabOnly { name: String, shipped: String },
    #[error("kernel {name} is not built (built: {built})")]
    NotBuilt { name: String, built: String },
}

/// The entry of a kernel, or why this build has none.
pub fn lookup(shape: KernelShape) -> Result<&'static KernelEntry, KernelError> {
    if let Some(k) = KERNELS.iter().find(|k| k.shape == shape) {
        return Ok(k);
    }
    let name = shape.to_string();
    if LAB_LEFT_OUT.contains(&name.as_str()) {
        return Err(KernelError::LabOnly {
            name,
            shipped: names(false),
        });
    }
    Err(KernelError::NotBuilt {
        name,
        built: names(true),
    })
}

/// Parse a user's kernel name (`--gpu-kernel`, a config file) into one this build carries.
pub fn parse(name: &str) -> Result<KernelShape, KernelError> {
    let shape: KernelShape = name.parse().map_err(|_| KernelError::Unknown {
        name: name.to_owned(),
        built: names(true),
    })?;
    lookup(shape).map(|k| k.shape)
}

/// "x1, m4": the shipped kernels' names, and the lab ones too if `lab`.
fn names(lab: bool) -> String {
    KERNELS
        .iter()
        .filter(|k| lab || !k.lab)
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bench JSON's and the API's `kernel` field: the name users type.
impl serde::Serialize for KernelShape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

    fn x1() -> &'static str {
        lookup(KernelShape::X1).expect("x1 ships").source
    }

    #[test]
    fn row_is_nine_vec4() {
        assert_eq!(std::mem::size_of::<Row>(), 144);
        for k in KERNELS {
            assert!(
                k.source
                    .contains(&format!("const MAX_ROWS: u32 = {MAX_ROWS}u;")),
                "{}",
                k.name
            );
        }
    }

    #[test]
    fn kernel_is_unrolled() {
        // Every round constant appears inline (folded with a constant message word where the
        // word is known), and there is no round loop.
        let src = x1();
        assert!(src.contains("0xc67178f2u"), "K63 inline in the finish path");
        assert!(src.contains("let qe61"));
        assert!(!src.contains("//@"));
    }

    #[test]
    fn the_defaults_ship() {
        // `GpuOptions::for_adapter` picks these: every build must carry them.
        for shape in [KernelShape::X1, KernelShape::M4] {
            assert!(!lookup(shape).expect("a default kernel").lab, "{shape}");
        }
        let shipped: Vec<_> = KERNELS.iter().filter(|k| !k.lab).map(|k| k.name).collect();
        assert_eq!(shipped, ["x1", "m4"]);
    }

    #[test]
    fn every_entry_has_its_entry_point_and_no_other() {
        for k in KERNELS {
            assert_eq!(k.name, k.shape.to_string());
            assert_eq!(k.name.parse::<KernelShape>(), Ok(k.shape));
            assert_eq!(k.entry_point, k.shape.entry_point());
            assert_eq!(k.source.matches("@compute").count(), 1, "{}", k.name);
            assert!(
                k.source.contains(&format!("fn {}(", k.entry_point)),
                "{}",
                k.name
            );
            if k.shape.lanes == Lanes::X2 {
                // The two-chain body: both chains' names, interleaved.
                assert!(k.source.contains("let qe61_a") && k.source.contains("let qe61_b"));
                assert!(k.source.contains("let fin_lo_b"));
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for lanes in [Lanes::X1, Lanes::X2] {
            for mad in MadLevel::ALL {
                for probe in [Probe::None, Probe::RotShift] {
                    let k = KernelShape::new(lanes, mad).with_probe(probe);
                    assert_eq!(k.to_string().parse::<KernelShape>(), Ok(k));
                }
            }
        }
        let parse = |s: &str| s.parse::<KernelShape>().ok();
        assert_eq!(parse(" X1 "), Some(KernelShape::X1));
        assert_eq!(
            parse("M4x2"),
            Some(KernelShape::new(Lanes::X2, MadLevel::M4))
        );
        assert_eq!(
            parse("x2-RotShift"),
            Some(KernelShape::new(Lanes::X2, MadLevel::None).with_probe(Probe::RotShift))
        );
        for bad in [
            "", "x3", "m0", "m5", "m4x3", "m", "x1x2", "x1-", "x1-rot", "m1x2x2",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&KernelShape::new(Lanes::X2, MadLevel::M3)).ok(),
            Some("\"m3x2\"".to_owned())
        );
    }

    #[test]
    fn lab_variants_are_refused_with_the_feature_named() {
        assert_eq!(parse("m4"), Ok(KernelShape::M4));
        let unknown = parse("x9").expect_err("no such kernel").to_string();
        assert!(
            unknown.contains("x9") && unknown.contains("x1, m4"),
            "{unknown}"
        );
        if cfg!(feature = "kernel-lab") {
            assert!(parse("m2x2").is_ok() && parse("x1-rotshift").is_ok());
            assert!(LAB_LEFT_OUT.is_empty());
        } else {
            assert_eq!(
                parse("m2x2").expect_err("a lab variant").to_string(),
                "kernel m2x2 is a lab variant: build with `--features kernel-lab` to use it; \
                 shipped: x1, m4"
            );
            assert!(matches!(parse("x2"), Err(KernelError::LabOnly { .. })));
            assert!(matches!(
                parse("x1-rotshift"),
                Err(KernelError::LabOnly { .. })
            ));
            assert!(KERNELS.iter().all(|k| !k.lab));
        }
        // A well-formed name that no list holds.
        assert!(matches!(
            parse("m3-rotshift"),
            Err(KernelError::NotBuilt { .. })
        ));
    }

    #[test]
    fn mad_variants_multiply_by_the_runtime_one() {
        // The plain kernels mention the form only in comments.
        for k in KERNELS.iter().filter(|k| k.shape.mad == MadLevel::None) {
            assert!(!k.source.contains("let one"), "{}", k.name);
        }
        for lanes in [Lanes::X1, Lanes::X2] {
            let mut previous = None;
            for mad in MadLevel::ALL {
                let Ok(k) = lookup(KernelShape::new(lanes, mad)) else {
                    continue;
                };
                if mad != MadLevel::None {
                    assert!(
                        k.source.contains("let one = rows[ri].knobs.x;"),
                        "{}",
                        k.name
                    );
                }
                // Each level writes more additions as multiply-adds than the one before.
                let mads = k.source.matches("* one +").count();
                assert!(previous.is_none_or(|p| mads > p), "{}: {mads}", k.name);
                previous = Some(mads);
            }
        }
    }

    #[test]
    fn probe_kernels_are_labelled() {
        for k in KERNELS {
            let labelled = k.source.contains("PROBE KERNEL");
            assert_eq!(labelled, k.shape.probe != Probe::None, "{}", k.name);
        }
    }
}
