//! Build script: expands the mining-kernel template (`shaders/sha256d.wgsl`) into straight-line
//! WGSL and validates every shader with naga, so a bad shader fails the build with the line it
//! is on.
//!
//! Why generate: WGSL has no macros, and a loop-and-array SHA-256 ran 7-11x slower than an
//! unrolled one on lavapipe. The generator writes every round out, inlines the K constants,
//! folds constant message words (padding, zeros, lengths) at build time, and hoists every value
//! that is the same for all nonces of a row above the nonce loop. It works on a tiny symbolic
//! value type (constant / row-uniform / per-nonce), so the folding follows from the algebra
//! instead of from hand-written special cases. The generator itself is `build/wgsl_gen.rs`.
//!
//! A template is written out once per variant: `<name>.wgsl` (the normal kernel) and
//! `<name>_<m>.wgsl` for each multiply-add variant of `wgsl_gen::MAD_VARIANTS` (same entry
//! points, some additions written `x * one + y`; see `wgsl_gen::Mad`).

use std::path::{Path, PathBuf};

#[path = "build/wgsl_gen.rs"]
mod wgsl_gen;

use wgsl_gen::{generate_kernel, Mad, MAD_VARIANTS};

// The SHA-256 constants and functions of the crate itself, so K, IV and the bit functions have
// one source of truth (the file is pure Rust with no dependencies).
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "src/pow/sha256.rs"]
mod sha256;

/// Template lines of this form are replaced by generated code.
const MARKER: &str = "//@generate ";

/// Set at build time to generate a deliberately WRONG kernel that measures the cost of one kind
/// of operation on a real GPU (never set for a normal build):
/// `rotshift` emits every rotate `(x >> n) | (x << (32 - n))` as the single shift `x >> n`.
const PROBE_VAR: &str = "WGMINER_KERNEL_PROBE";

/// A build-time variation of the generated code, for measurements only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    None,
    /// Rotates become one right shift: the hashes are wrong, the speed tells what rotates cost.
    RotShift,
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/pow/sha256.rs");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-env-changed={PROBE_VAR}");
    let probe = match std::env::var(PROBE_VAR).as_deref() {
        Err(_) | Ok("") => Probe::None,
        Ok("rotshift") => Probe::RotShift,
        Ok(other) => {
            eprintln!("{PROBE_VAR}={other}: unknown kernel probe (known: rotshift)");
            std::process::exit(1);
        }
    };
    // The crate reads this (`kernel::PROBE`) to label results from a probe kernel.
    let probe_name = match probe {
        Probe::None => "",
        Probe::RotShift => "rotshift",
    };
    println!("cargo:rustc-env=WGMINER_KERNEL_PROBE_BUILT={probe_name}");
    if probe != Probe::None {
        println!(
            "cargo:warning={PROBE_VAR}={probe_name}: building a PROBE kernel whose hashes are \
             WRONG (for speed measurements only)"
        );
    }
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
        if let Err(message) = process(path, &out_dir, probe) {
            eprintln!("{message}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Validate one shader; a template is expanded first, written to OUT_DIR, and the expansion is
/// what gets validated (errors then point at lines of the generated file).
fn process(path: &Path, out_dir: &Path, probe: Probe) -> Result<(), String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !src.contains(MARKER) {
        return validate(&path.display().to_string(), &src);
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: not a UTF-8 file name", path.display()))?;
    let variants = std::iter::once((String::new(), Mad::default()))
        .chain(MAD_VARIANTS.iter().map(|(n, m)| (format!("_{n}"), *m)));
    for (suffix, mad) in variants {
        let generated = expand(&src, probe, mad).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = out_dir.join(format!("{stem}{suffix}.wgsl"));
        std::fs::write(&out, &generated).map_err(|e| format!("{}: {e}", out.display()))?;
        validate(&out.display().to_string(), &generated)
            .map_err(|e| format!("{e}\n(generated from the template {})", path.display()))?;
    }
    Ok(())
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

/// Replace every marker line of the template with its generated section, indented like the
/// marker, and add a header saying what was generated.
///
/// Sections: `prelude` (row-invariant values, shared by every entry point); `body` and `finish`
/// for one nonce per loop iteration (names as the generator writes them: `w3` in, `h7` and
/// `fin_lo`/`fin_hi` out); `body_x2`, `finish_x2_a` and `finish_x2_b` for two nonces per
/// iteration, every name suffixed `_a` or `_b` and the two chains' lines interleaved.
fn expand(template: &str, probe: Probe, mad: Mad) -> Result<String, String> {
    let kernel = generate_kernel("", probe, mad);
    let chain_a = generate_kernel("_a", probe, mad);
    let chain_b = generate_kernel("_b", probe, mad);
    assert!(
        chain_a.prelude == kernel.prelude && chain_b.prelude == kernel.prelude,
        "the row-invariant prelude does not depend on the chain"
    );
    assert_eq!(chain_a.body.len(), chain_b.body.len());
    // Two independent SHA-256d chains, line by line: each line of one chain sits next to the
    // same step of the other, so neighbouring instructions never depend on each other.
    let body_x2: Vec<String> = chain_a
        .body
        .iter()
        .zip(&chain_b.body)
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();

    let mut out = String::new();
    out.push_str(
        "// GENERATED by build.rs from shaders/sha256d.wgsl; edit the template, not this file.\n",
    );
    if probe == Probe::RotShift {
        out.push_str(
            "// PROBE KERNEL (WGMINER_KERNEL_PROBE=rotshift): every rotate is a single right \
             shift, so the hashes are WRONG. For speed measurements only.\n",
        );
    }
    if mad.any() {
        out.push_str(&format!(
            "// MULTIPLY-ADD VARIANT {mad:?}: {} per-nonce additions are written `x * one + y` \
             with the runtime 1 `one` (rows[ri].knobs.x), so that they can run on the \
             multiply-add pipe; the hashes are the same.\n",
            kernel.ops.mad
        ));
    }
    out.push_str(&format!(
        "// Per nonce (to the early-exit test): {} additions, {} bitwise ops, {} rotations, {} \
         shifts; {} row-invariant values hoisted above the nonce loop.\n",
        kernel.ops.add,
        kernel.ops.logic,
        kernel.ops.rotate,
        kernel.ops.shift,
        kernel.prelude.len()
    ));
    for line in template.lines() {
        let trimmed = line.trim_start();
        let Some(section) = trimmed.strip_prefix(MARKER) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let indent = &line[..line.len() - trimmed.len()];
        let lines = match section.trim() {
            "prelude" => &kernel.prelude,
            "body" => &kernel.body,
            "finish" => &kernel.finish,
            "body_x2" => &body_x2,
            "finish_x2_a" => &chain_a.finish,
            "finish_x2_b" => &chain_b.finish,
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
