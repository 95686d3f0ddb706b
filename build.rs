//! Build script: expands the mining-kernel template (`shaders/sha256d.wgsl`) into straight-line
//! WGSL, one module per kernel variant, validates every shader with naga, so a bad shader fails
//! the build with the line it is on, and writes the table of variants the host includes.
//!
//! Why generate: WGSL has no macros, and a loop-and-array SHA-256 ran 7-11x slower than an
//! unrolled one on lavapipe. The generator writes every round out, inlines the K constants,
//! folds constant message words (padding, zeros, lengths) at build time, and hoists every value
//! that is the same for all nonces of a row above the nonce loop. It works on a tiny symbolic
//! value type (constant / row-uniform / per-nonce), so the folding follows from the algebra
//! instead of from hand-written special cases. The generator itself is `build/wgsl_gen.rs`.
//!
//! Each variant of [`SHIPPED`] (and of [`LAB`] with `--features kernel-lab`) is written to
//! `OUT_DIR/sha256d_<name>.wgsl` with only its entry point, and listed in `OUT_DIR/kernels.rs`
//! (`KERNELS`, `LAB_LEFT_OUT`), which `src/backend/gpu/kernel.rs` includes: adding a variant
//! here is all it takes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "build/wgsl_gen.rs"]
mod wgsl_gen;

// The kernel names and their parts, shared with the host so both sides spell them alike.
#[allow(dead_code)]
#[path = "src/backend/gpu/shape.rs"]
mod shape;

use shape::{KernelShape, Lanes, MadLevel, Probe};
use wgsl_gen::{generate_kernel, Mad};

// The SHA-256 constants and functions of the crate itself, so K, IV and the bit functions have
// one source of truth (the file is pure Rust with no dependencies).
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "src/pow/sha256.rs"]
mod sha256;

/// The kernels every build carries, measured on an H100 and on lavapipe (BENCHMARKS.md,
/// "Kernel variants"):
/// - m4, NVIDIA's default (`GpuOptions::for_adapter`): 7.90 GH/s on the H100, the fastest of
///   all ten variants (x1 6.89, the next best m3x2 7.58).
/// - x1, every other device's default: on lavapipe 36.6 MH/s against m4's 24.7, and the plain
///   kernel is the safe choice for GPUs nobody has measured.
const SHIPPED: [KernelShape; 2] = [KernelShape::X1, KernelShape::M4];

/// Lab variants, built only with `--features kernel-lab` (for benches and measurements): they
/// win nowhere measured. x2 ran 6.94 GH/s on the H100, within x1's own spread (6.82-6.91) and
/// 12% under m4, and below x1 on lavapipe; m1..m3 lie between x1 and m4 on the H100 (7.17,
/// 7.56, 7.58); m1x2..m4x2 never beat m4 (7.17, 7.49, 7.58, 6.48); and the probes compute wrong
/// hashes on purpose (x1-rotshift: every rotate a single shift, 6.91 against x1's 6.90, so
/// rotates already cost one instruction).
const LAB: [KernelShape; 10] = [
    KernelShape::new(Lanes::X2, MadLevel::None),
    KernelShape::new(Lanes::X1, MadLevel::M1),
    KernelShape::new(Lanes::X1, MadLevel::M2),
    KernelShape::new(Lanes::X1, MadLevel::M3),
    KernelShape::new(Lanes::X2, MadLevel::M1),
    KernelShape::new(Lanes::X2, MadLevel::M2),
    KernelShape::new(Lanes::X2, MadLevel::M3),
    KernelShape::new(Lanes::X2, MadLevel::M4),
    KernelShape::X1.with_probe(Probe::RotShift),
    KernelShape::new(Lanes::X2, MadLevel::None).with_probe(Probe::RotShift),
];

/// The template the kernels are generated from.
const TEMPLATE: &str = "shaders/sha256d.wgsl";

/// Template lines of this form are replaced by generated code.
const MARKER: &str = "//@generate ";

/// Template lines `//@lanes x1` / `//@lanes x2` open a part only modules of that loop shape
/// keep; `//@lanes all` closes it.
const LANES_MARKER: &str = "//@lanes ";

/// The environment variable that used to select a probe at build time: refused, with the
/// replacement named, so a script still setting it does not silently measure the real kernel.
const OLD_PROBE_VAR: &str = "WGMINER_KERNEL_PROBE";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/pow/sha256.rs");
    println!("cargo:rerun-if-changed=src/backend/gpu/shape.rs");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-env-changed={OLD_PROBE_VAR}");
    if std::env::var_os(OLD_PROBE_VAR).is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "{OLD_PROBE_VAR} is gone: build with `--features kernel-lab` and pick the probe at \
             run time (`--gpu-kernel x1-rotshift`)"
        );
        std::process::exit(1);
    }
    let lab = std::env::var_os("CARGO_FEATURE_KERNEL_LAB").is_some();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut shaders: Vec<PathBuf> = std::fs::read_dir("shaders")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
                .collect()
        })
        .unwrap_or_default();
    shaders.sort();
    let mut failed = false;
    for path in &shaders {
        println!("cargo:rerun-if-changed={}", path.display());
        let result = if path == Path::new(TEMPLATE) {
            generate_all(path, &out_dir, lab)
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|src| validate(&path.display().to_string(), &src))
        };
        if let Err(message) = result {
            eprintln!("{message}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Write, validate and list every variant this build carries: shipped ones first, then the lab
/// ones if `lab`.
fn generate_all(path: &Path, out_dir: &Path, lab: bool) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut names: Vec<String> = SHIPPED.iter().chain(&LAB).map(|k| k.to_string()).collect();
    names.sort();
    names.dedup();
    if names.len() != SHIPPED.len() + LAB.len() {
        return Err("build.rs: a kernel variant is listed twice in SHIPPED and LAB".into());
    }
    let built = SHIPPED
        .iter()
        .map(|k| (*k, false))
        .chain(LAB.iter().filter(|_| lab).map(|k| (*k, true)));
    let mut written = Vec::new();
    let mut table = String::from(
        "// GENERATED by build.rs from its SHIPPED and LAB lists; edit those, not this file.\n\n\
         /// The kernels this build carries: shipped ones first, then (with `--features \
         kernel-lab`) the lab ones.\n\
         pub const KERNELS: &[KernelEntry] = &[\n",
    );
    for (shape, is_lab) in built {
        let name = shape.to_string();
        let file = format!("sha256d_{name}.wgsl");
        let generated =
            expand(&src, shape).map_err(|e| format!("{}: {e} ({name})", path.display()))?;
        let out = out_dir.join(&file);
        replace(&out, &generated)?;
        written.push(file.clone());
        validate(&out.display().to_string(), &generated)
            .map_err(|e| format!("{e}\n(generated from the template {})", path.display()))?;
        let _ = writeln!(
            table,
            "    KernelEntry {{\n        name: {name:?},\n        shape: KernelShape {{ \
             lanes: Lanes::{:?}, mad: MadLevel::{:?}, probe: Probe::{:?} }},\n        \
             entry_point: {:?},\n        source: include_str!(concat!(env!(\"OUT_DIR\"), \
             {:?})),\n        lab: {is_lab},\n    }},",
            shape.lanes,
            shape.mad,
            shape.probe,
            shape.entry_point(),
            format!("/{file}"),
        );
    }
    table.push_str(
        "];\n\n/// The lab variants this build leaves out (`--features kernel-lab` builds them).\n",
    );
    let left_out: Vec<String> = LAB
        .iter()
        .filter(|_| !lab)
        .map(|k| format!("{:?}", k.to_string()))
        .collect();
    let _ = writeln!(
        table,
        "pub const LAB_LEFT_OUT: &[&str] = &[{}];",
        left_out.join(", ")
    );
    replace(&out_dir.join("kernels.rs"), &table)?;
    // Modules an earlier build wrote for variants this one leaves out: gone, so OUT_DIR shows
    // exactly what this build carries.
    let stale = std::fs::read_dir(out_dir)
        .map_err(|e| format!("{}: {e}", out_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|f| f.starts_with("sha256d") && f.ends_with(".wgsl") && !written.contains(f));
    for f in stale {
        let _ = std::fs::remove_file(out_dir.join(f));
    }
    Ok(())
}

/// Write `contents` to a new file and rename it over `path`: a target directory seeded with
/// hard links shares its old files with other checkouts, so they are replaced, never written
/// through.
fn replace(path: &Path, contents: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn validate(path: &str, src: &str) -> Result<(), String> {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    let module = naga::front::wgsl::parse_str(src).map_err(|e| {
        format!(
            "WGSL parse error\n{}",
            e.emit_to_string_with_path(src, path)
        )
    })?;
    Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(&module)
        .map_err(|e| {
            format!(
                "WGSL validation error\n{}",
                e.emit_to_string_with_path(src, path)
            )
        })?;
    Ok(())
}

/// Write the module of one variant: keep the template's parts for its loop shape (see
/// [`LANES_MARKER`]), replace every generate-marker line with its section, indented like the
/// marker, and add a header saying what was generated.
///
/// Sections: `prelude` (row-invariant values); `body` and `finish` for one nonce per loop
/// iteration (names as the generator writes them: `w3` in, `h7` and `fin_lo`/`fin_hi` out);
/// `body_x2`, `finish_x2_a` and `finish_x2_b` for two nonces per iteration, every name suffixed
/// `_a` or `_b` and the two chains' lines interleaved.
fn expand(template: &str, shape: KernelShape) -> Result<String, String> {
    let mad = Mad::for_level(shape.mad);
    let probe = shape.probe;
    let (kernel, chain_b) = match shape.lanes {
        Lanes::X1 => (generate_kernel("", probe, mad), None),
        Lanes::X2 => (
            generate_kernel("_a", probe, mad),
            Some(generate_kernel("_b", probe, mad)),
        ),
    };
    // Two independent SHA-256d chains, line by line: each line of one chain sits next to the
    // same step of the other, so neighbouring instructions never depend on each other.
    let body_x2: Vec<String> = match &chain_b {
        Some(b) => {
            assert!(
                b.prelude == kernel.prelude && b.body.len() == kernel.body.len(),
                "the row-invariant prelude does not depend on the chain"
            );
            kernel
                .body
                .iter()
                .zip(&b.body)
                .flat_map(|(a, b)| [a.clone(), b.clone()])
                .collect()
        }
        None => Vec::new(),
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "// GENERATED by build.rs from {TEMPLATE}: kernel {shape}, entry point {}; edit the \
         template, not this file.",
        shape.entry_point()
    );
    if probe == Probe::RotShift {
        out.push_str(
            "// PROBE KERNEL (rotshift): every rotate is a single right shift, so the hashes are \
             WRONG. For speed measurements only.\n",
        );
    }
    if mad.any() {
        let _ = writeln!(
            out,
            "// MULTIPLY-ADD VARIANT {mad:?}: {} per-nonce additions are written `x * one + y` \
             with the runtime 1 `one` (rows[ri].knobs.x), so that they can run on the \
             multiply-add pipe; the hashes are the same.",
            kernel.ops.mad
        );
    }
    let _ = writeln!(
        out,
        "// Per nonce (to the early-exit test): {} additions, {} bitwise ops, {} rotations, {} \
         shifts; {} row-invariant values hoisted above the nonce loop.",
        kernel.ops.add,
        kernel.ops.logic,
        kernel.ops.rotate,
        kernel.ops.shift,
        kernel.prelude.len()
    );
    let own = match shape.lanes {
        Lanes::X1 => "x1",
        Lanes::X2 => "x2",
    };
    let mut keep = true;
    for line in template.lines() {
        let trimmed = line.trim_start();
        if let Some(part) = trimmed.strip_prefix(LANES_MARKER) {
            keep = match part.trim() {
                "all" => true,
                "x1" | "x2" => part.trim() == own,
                other => return Err(format!("unknown lanes part '{other}'")),
            };
            continue;
        }
        if !keep {
            continue;
        }
        let Some(section) = trimmed.strip_prefix(MARKER) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let indent = &line[..line.len() - trimmed.len()];
        let chain_b = || {
            chain_b
                .as_ref()
                .ok_or_else(|| format!("section '{section}' outside an x2 part"))
        };
        let lines = match section.trim() {
            "prelude" => &kernel.prelude,
            "body" => &kernel.body,
            "finish" => &kernel.finish,
            "body_x2" => &body_x2,
            "finish_x2_a" => &kernel.finish,
            "finish_x2_b" => &chain_b()?.finish,
            other => return Err(format!("unknown generated section '{other}'")),
        };
        for l in lines {
            out.push_str(indent);
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}
