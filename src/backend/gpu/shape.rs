//! What tells one mining kernel from another: the shape of its nonce loop, how many of its
//! additions are written as multiply-adds, and (in lab builds only) a deliberately wrong probe.
//! The names users type (`--gpu-kernel m4`, `gpu_kernel = "x1"` in a config file, the bench
//! JSON's `kernel` field) are this struct's `Display` and `FromStr`.
//!
//! This file is pure Rust with no dependencies: build.rs includes it too (`#[path]`), so the
//! build-side list of variants and the host agree on every name by construction.

use std::fmt;
use std::str::FromStr;

/// Nonces per loop iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lanes {
    /// One nonce per iteration (entry point `search`).
    #[default]
    X1,
    /// Two nonces per iteration as two interleaved, independent SHA-256d chains (entry point
    /// `search_x2`): more instruction-level parallelism, more registers.
    X2,
}

/// How many of the hot path's additions are written `x * one + y`, `one` a runtime 1 the
/// compiler cannot fold, so that NVIDIA's compilers issue them on the FMA pipe as IMAD instead
/// of on the saturated integer pipe (see `Mad` in build/wgsl_gen.rs for each level's sums).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MadLevel {
    /// Plain additions.
    #[default]
    None,
    /// One of T1's additions: T1 = Σ1 * one + (Ch + h + W + K).
    M1,
    /// m1, and a = Σ0 * one + (T1 + Maj).
    M2,
    /// m2, and each message word σ1 * one + (W[t-7] + σ0 + W[t-16]).
    M3,
    /// Every round and schedule addition of a computed per-nonce term.
    M4,
}

impl MadLevel {
    pub const ALL: [MadLevel; 5] = [
        MadLevel::None,
        MadLevel::M1,
        MadLevel::M2,
        MadLevel::M3,
        MadLevel::M4,
    ];

    /// 0 for plain additions, 1..=4 for m1..m4.
    pub const fn level(self) -> u8 {
        self as u8
    }
}

/// A deliberately wrong variation of the generated code that measures what one kind of
/// operation costs on a real GPU. Probe kernels exist only in `kernel-lab` builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// The real kernel.
    #[default]
    None,
    /// Every rotate `(x >> n) | (x << (32 - n))` becomes the single shift `x >> n`: the hashes
    /// are wrong, the speed tells what rotates cost.
    RotShift,
}

impl Probe {
    /// The name's suffix after `-`, or None for the real kernel.
    pub const fn suffix(self) -> Option<&'static str> {
        match self {
            Probe::None => None,
            Probe::RotShift => Some("rotshift"),
        }
    }
}

/// One kernel variant. All compute the same hashes, except probes.
///
/// Names: `x1` and `x2` (plain additions), `m1`..`m4` (one nonce per iteration with
/// multiply-adds), `m1x2`..`m4x2` (the same with two), and a probe as a suffix
/// (`x1-rotshift`). Parsing ignores case and surrounding spaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelShape {
    pub lanes: Lanes,
    pub mad: MadLevel,
    pub probe: Probe,
}

impl KernelShape {
    /// The plain one-nonce kernel: the default everywhere but NVIDIA.
    pub const X1: KernelShape = KernelShape::new(Lanes::X1, MadLevel::None);
    /// The multiply-add kernel NVIDIA GPUs run by default.
    pub const M4: KernelShape = KernelShape::new(Lanes::X1, MadLevel::M4);

    pub const fn new(lanes: Lanes, mad: MadLevel) -> Self {
        KernelShape {
            lanes,
            mad,
            probe: Probe::None,
        }
    }

    pub const fn with_probe(self, probe: Probe) -> Self {
        KernelShape { probe, ..self }
    }

    /// The WGSL entry point of this loop shape.
    pub const fn entry_point(self) -> &'static str {
        match self.lanes {
            Lanes::X1 => "search",
            Lanes::X2 => "search_x2",
        }
    }
}

impl fmt::Display for KernelShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.mad.level(), self.lanes) {
            (0, Lanes::X1) => f.write_str("x1")?,
            (0, Lanes::X2) => f.write_str("x2")?,
            (m, Lanes::X1) => write!(f, "m{m}")?,
            (m, Lanes::X2) => write!(f, "m{m}x2")?,
        }
        match self.probe.suffix() {
            Some(s) => write!(f, "-{s}"),
            None => Ok(()),
        }
    }
}

/// A kernel name that follows none of the patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseKernelShapeError(pub String);

impl fmt::Display for ParseKernelShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown GPU kernel '{}' (names: x1, x2, m1..m4, m1x2..m4x2, and a probe suffix \
             such as x1-rotshift)",
            self.0
        )
    }
}

impl std::error::Error for ParseKernelShapeError {}

impl FromStr for KernelShape {
    type Err = ParseKernelShapeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseKernelShapeError(s.to_owned());
        let name = s.trim().to_ascii_lowercase();
        let (base, probe) = match name.split_once('-') {
            None => (name.as_str(), Probe::None),
            Some((base, "rotshift")) => (base, Probe::RotShift),
            Some(_) => return Err(err()),
        };
        let (lanes, mad) = match base {
            "x1" => (Lanes::X1, MadLevel::None),
            "x2" => (Lanes::X2, MadLevel::None),
            _ => {
                let rest = base.strip_prefix('m').ok_or_else(err)?;
                let (digit, lanes) = match rest.strip_suffix("x2") {
                    Some(d) => (d, Lanes::X2),
                    None => (rest, Lanes::X1),
                };
                let mad = MadLevel::ALL
                    .into_iter()
                    .skip(1)
                    .find(|m| digit == m.level().to_string())
                    .ok_or_else(err)?;
                (lanes, mad)
            }
        };
        Ok(KernelShape::new(lanes, mad).with_probe(probe))
    }
}
