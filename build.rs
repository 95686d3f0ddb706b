//! Build script: expands the mining-kernel template (`shaders/sha256d.wgsl`) into straight-line
//! WGSL and validates every shader with naga, so a bad shader fails the build with the line it
//! is on.
//!
//! Why generate: WGSL has no macros, and a loop-and-array SHA-256 ran 7-11x slower than an
//! unrolled one on lavapipe. The generator writes every round out, inlines the K constants,
//! folds constant message words (padding, zeros, lengths) at build time, and hoists every value
//! that is the same for all nonces of a row above the nonce loop. It works on a tiny symbolic
//! value type (constant / row-uniform / per-nonce), so the folding follows from the algebra
//! instead of from hand-written special cases.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

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
    let generated = expand(&src, probe).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = out_dir.join(path.file_name().expect("a file"));
    std::fs::write(&out, &generated).map_err(|e| format!("{}: {e}", out.display()))?;
    validate(&out.display().to_string(), &generated)
        .map_err(|e| format!("{e}\n(generated from the template {})", path.display()))
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
fn expand(template: &str, probe: Probe) -> Result<String, String> {
    let kernel = generate_kernel("", probe);
    let chain_a = generate_kernel("_a", probe);
    let chain_b = generate_kernel("_b", probe);
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

// ---------------------------------------------------------------------------------------------
// The symbolic SHA-256d generator.

/// A 32-bit value as the generator sees it.
#[derive(Clone, Debug, PartialEq)]
enum V {
    /// Known at build time: folded.
    Const(u32),
    /// The same for every nonce of a row: computed once per invocation, before the nonce loop.
    Row(String),
    /// Depends on the nonce. Holds a WGSL expression (a name once bound).
    Nonce(String),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::Const(c) => format!("0x{c:08x}u"),
            V::Row(e) | V::Nonce(e) => e.clone(),
        }
    }

    fn is_nonce(&self) -> bool {
        matches!(self, V::Nonce(_))
    }

    /// 0 for constants, 1 for row values, 2 for per-nonce values.
    fn variability(&self) -> u8 {
        match self {
            V::Const(_) => 0,
            V::Row(_) => 1,
            V::Nonce(_) => 2,
        }
    }
}

/// Per-nonce operation counts of the hot path (up to the early-exit test).
#[derive(Default, Debug)]
struct Ops {
    add: usize,
    logic: usize,
    rotate: usize,
    shift: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Body,
    Finish,
}

#[derive(Default)]
struct Kernel {
    prelude: Vec<String>,
    body: Vec<String>,
    finish: Vec<String>,
    ops: Ops,
}

struct Gen {
    k: Kernel,
    section: Section,
    names: HashSet<String>,
    row_lets: usize,
    /// Appended to every per-nonce name, so several chains can share one loop body.
    suffix: &'static str,
    probe: Probe,
}

impl Gen {
    fn new(suffix: &'static str, probe: Probe) -> Self {
        Gen {
            k: Kernel::default(),
            section: Section::Body,
            names: HashSet::new(),
            row_lets: 0,
            suffix,
            probe,
        }
    }

    /// A per-nonce name of this chain.
    fn name(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }

    fn count(&mut self, f: impl FnOnce(&mut Ops)) {
        if self.section == Section::Body {
            f(&mut self.k.ops);
        }
    }

    /// A row-invariant value, bound above the nonce loop.
    fn row_let(&mut self, expr: String) -> V {
        let name = format!("r{}", self.row_lets);
        self.row_lets += 1;
        self.k.prelude.push(format!("let {name} = {expr};"));
        V::Row(name)
    }

    /// Give a per-nonce value a name (values used more than once must have one); the chain's
    /// suffix is appended to `name`.
    fn bind(&mut self, name: &str, v: V) -> V {
        let V::Nonce(expr) = v else { return v };
        if is_atom(&expr) {
            return V::Nonce(expr);
        }
        let name = self.name(name);
        assert!(
            self.names.insert(name.clone()),
            "generated name {name} used twice"
        );
        let line = format!("let {name} = {expr};");
        match self.section {
            Section::Body => self.k.body.push(line),
            Section::Finish => self.k.finish.push(line),
        }
        V::Nonce(name)
    }

    /// A bitwise op, folded when both sides are constant and hoisted when neither depends on
    /// the nonce.
    fn logic(&mut self, op: char, a: &V, b: &V) -> V {
        let f = |x: u32, y: u32| match op {
            '^' => x ^ y,
            '&' => x & y,
            '|' => x | y,
            _ => unreachable!("bitwise op {op}"),
        };
        match (a, b) {
            (V::Const(x), V::Const(y)) => return V::Const(f(*x, *y)),
            (V::Const(0), o) | (o, V::Const(0)) if op != '&' => return o.clone(),
            (V::Const(0), _) | (_, V::Const(0)) => return V::Const(0),
            _ => {}
        }
        let expr = format!("({} {op} {})", a.text(), b.text());
        if a.is_nonce() || b.is_nonce() {
            self.count(|o| o.logic += 1);
            V::Nonce(expr)
        } else {
            self.row_let(expr)
        }
    }

    fn rotr(&mut self, x: &V, n: u32) -> V {
        match x {
            V::Const(c) => V::Const(c.rotate_right(n)),
            _ => {
                let t = x.text();
                assert!(is_atom(&t), "rotate of an unbound expression {t}");
                // Written as two shifts and an OR: the pattern GPU compilers turn into one
                // funnel shift (NVIDIA SHF) or rotate. The rotshift probe keeps one shift.
                let expr = match self.probe {
                    Probe::None => format!("(({t} >> {n}u) | ({t} << {}u))", 32 - n),
                    Probe::RotShift => format!("({t} >> {n}u)"),
                };
                if x.is_nonce() {
                    self.count(|o| o.rotate += 1);
                    V::Nonce(expr)
                } else {
                    self.row_let(expr)
                }
            }
        }
    }

    fn shr(&mut self, x: &V, n: u32) -> V {
        match x {
            V::Const(c) => V::Const(c >> n),
            _ => {
                let expr = format!("({} >> {n}u)", x.text());
                if x.is_nonce() {
                    self.count(|o| o.shift += 1);
                    V::Nonce(expr)
                } else {
                    self.row_let(expr)
                }
            }
        }
    }

    fn xor3(&mut self, a: V, b: V, c: V) -> V {
        let ab = self.logic('^', &a, &b);
        self.logic('^', &ab, &c)
    }

    fn big_sigma0(&mut self, x: &V) -> V {
        let (a, b, c) = (self.rotr(x, 2), self.rotr(x, 13), self.rotr(x, 22));
        self.xor3(a, b, c)
    }

    fn big_sigma1(&mut self, x: &V) -> V {
        let (a, b, c) = (self.rotr(x, 6), self.rotr(x, 11), self.rotr(x, 25));
        self.xor3(a, b, c)
    }

    fn small_sigma0(&mut self, x: &V) -> V {
        let (a, b, c) = (self.rotr(x, 7), self.rotr(x, 18), self.shr(x, 3));
        self.xor3(a, b, c)
    }

    fn small_sigma1(&mut self, x: &V) -> V {
        let (a, b, c) = (self.rotr(x, 17), self.rotr(x, 19), self.shr(x, 10));
        self.xor3(a, b, c)
    }

    /// Ch(e,f,g) = g ^ (e & (f ^ g)): no NOT, and f ^ g is row-invariant in early rounds.
    fn ch(&mut self, e: &V, f: &V, g: &V) -> V {
        let fg = self.logic('^', f, g);
        let m = self.logic('&', e, &fg);
        self.logic('^', g, &m)
    }

    /// Maj(x,y,z) = (x & y) | (z & (x | y)). Maj is symmetric, so the two least variable
    /// operands take the x, y places and their AND and OR can be hoisted.
    fn maj(&mut self, a: &V, b: &V, c: &V) -> V {
        let mut v = [a, b, c];
        v.sort_by_key(|x| x.variability());
        let (x, y, z) = (v[0], v[1], v[2]);
        let xy = self.logic('&', x, y);
        let x_or_y = self.logic('|', x, y);
        let zm = self.logic('&', z, &x_or_y);
        self.logic('|', &xy, &zm)
    }

    /// Sum with constants folded and the row-invariant part summed once above the loop.
    fn add(&mut self, terms: &[V]) -> V {
        let mut konst = 0u32;
        let mut row = Vec::new();
        let mut nonce = Vec::new();
        for t in terms {
            match t {
                V::Const(c) => konst = konst.wrapping_add(*c),
                V::Row(e) => row.push(e.clone()),
                V::Nonce(e) => nonce.push(e.clone()),
            }
        }
        let fixed = match (row.len(), konst) {
            (0, 0) => None,
            (0, c) => Some(V::Const(c)),
            (1, 0) => Some(V::Row(row[0].clone())),
            _ => {
                if konst != 0 {
                    row.push(V::Const(konst).text());
                }
                Some(self.row_let(row.join(" + ")))
            }
        };
        if nonce.is_empty() {
            return fixed.unwrap_or(V::Const(0));
        }
        let adds = nonce.len() - 1 + usize::from(fixed.is_some());
        self.count(|o| o.add += adds);
        if let Some(f) = fixed {
            nonce.push(f.text());
        }
        if nonce.len() == 1 {
            V::Nonce(nonce.pop().expect("one term"))
        } else {
            V::Nonce(format!("({})", nonce.join(" + ")))
        }
    }

    /// Message word t >= 16 (FIPS 180-4 §6.2.2): σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
    fn schedule(&mut self, w: &mut [V], t: usize, name: &str) {
        let s1 = self.small_sigma1(&w[t - 2]);
        let s0 = self.small_sigma0(&w[t - 15]);
        let sum = self.add(&[s1, w[t - 7].clone(), s0, w[t - 16].clone()]);
        w[t] = self.bind(name, sum);
    }
}

fn is_atom(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Working variables by history: `a(t)` is the `a` entering round t, so round t reads
/// b = a(t-1), c = a(t-2), d = a(t-3) and likewise e..h from `e`. Index offset 3 holds the
/// initial b, c, d (and f, g, h).
struct History {
    a: Vec<Option<V>>,
    e: Vec<Option<V>>,
    /// T1 of each round whose `a` output was skipped (needed again only by the finish path).
    t1: Vec<Option<V>>,
    prefix: &'static str,
}

impl History {
    /// `state` is a..h entering round `t0`.
    fn new(prefix: &'static str, t0: usize, state: [V; 8]) -> Self {
        let mut a = vec![None; 64 + 4];
        let mut e = vec![None; 64 + 4];
        for i in 0..4 {
            a[t0 + 3 - i] = Some(state[i].clone());
            e[t0 + 3 - i] = Some(state[4 + i].clone());
        }
        History {
            a,
            e,
            t1: vec![None; 64],
            prefix,
        }
    }

    fn a(&self, t: isize) -> V {
        self.a[(t + 3) as usize].clone().expect("a value computed")
    }

    fn e(&self, t: isize) -> V {
        self.e[(t + 3) as usize].clone().expect("e value computed")
    }

    /// Round t. `t1_terms` is T1 as a list of addends, `t2` is T2 or None to skip computing the
    /// new `a` (its T1 is then kept for the finish path).
    fn round(&mut self, g: &mut Gen, t: usize, t1_terms: Vec<V>, t2: Option<Vec<V>>) {
        let ti = t as isize;
        let d = self.a(ti - 3);
        // T1 feeds both the new `e` and the new `a`: name it unless it is a single per-nonce
        // value plus row-invariant parts (then each use costs one addition anyway).
        let shared = if t1_terms.iter().filter(|v| v.is_nonce()).count() <= 1 && t2.is_some() {
            t1_terms
        } else {
            let sum = g.add(&t1_terms);
            vec![g.bind(&format!("{}t1_{t}", self.prefix), sum)]
        };
        let mut e_terms = vec![d];
        e_terms.extend(shared.iter().cloned());
        let e_sum = g.add(&e_terms);
        self.e[t + 4] = Some(g.bind(&format!("{}e{}", self.prefix, t + 1), e_sum));
        match t2 {
            Some(t2) => {
                let mut a_terms = shared;
                a_terms.extend(t2);
                let a_sum = g.add(&a_terms);
                self.a[t + 4] = Some(g.bind(&format!("{}a{}", self.prefix, t + 1), a_sum));
            }
            None => self.t1[t] = Some(shared[0].clone()),
        }
    }

    /// T1 addends of a standard round: h + Σ1(e) + Ch(e,f,g) + K[t] + W[t].
    fn t1_terms(&self, g: &mut Gen, t: usize, w: &V) -> Vec<V> {
        let ti = t as isize;
        let (e, f, gg, h) = (self.e(ti), self.e(ti - 1), self.e(ti - 2), self.e(ti - 3));
        let s1 = g.big_sigma1(&e);
        let ch = g.ch(&e, &f, &gg);
        vec![h, s1, ch, V::Const(sha256::K[t]), w.clone()]
    }

    /// T2 addends: Σ0(a) + Maj(a,b,c).
    fn t2_terms(&self, g: &mut Gen, t: usize) -> Vec<V> {
        let ti = t as isize;
        let (a, b, c) = (self.a(ti), self.a(ti - 1), self.a(ti - 2));
        let s0 = g.big_sigma0(&a);
        let maj = g.maj(&a, &b, &c);
        vec![s0, maj]
    }

    fn full_round(&mut self, g: &mut Gen, t: usize, w: &V) {
        let t1 = self.t1_terms(g, t, w);
        let t2 = self.t2_terms(g, t);
        self.round(g, t, t1, Some(t2));
    }

    /// The state after round 63 in a..h order.
    fn final_state(&self) -> [V; 8] {
        [
            self.a(64),
            self.a(63),
            self.a(62),
            self.a(61),
            self.e(64),
            self.e(63),
            self.e(62),
            self.e(61),
        ]
    }
}

fn rowv(s: &str) -> V {
    V::Row(s.to_string())
}

/// The kernel's three generated sections for one chain of hashes. Names the template provides:
/// `w3` (per nonce); `mid_lo/hi`, `st_lo/hi`, `sched`, `r3t1`, `r3t2` (per row). The body
/// defines `h7`; the finish section defines `fin_lo`/`fin_hi`, the whole final state. Every
/// per-nonce name, those three and `w3` included, carries `suffix` (the prelude does not).
fn generate_kernel(suffix: &'static str, probe: Probe) -> Kernel {
    use sha256::{HASH_BIT_LEN, HEADER_BIT_LEN, IV, PADDING_BIT};
    let mut g = Gen::new(suffix, probe);
    let lanes = ["x", "y", "z", "w"];
    let quad = |base: &str, i: usize| {
        rowv(&format!(
            "{base}_{}.{}",
            if i < 4 { "lo" } else { "hi" },
            lanes[i % 4]
        ))
    };

    // --- first hash, second block: tail words (only through the precomputed values), nonce,
    // padding bit, zeros, bit length 640.
    let mut w: Vec<V> = vec![V::Const(0); 64];
    for slot in w.iter_mut().take(3) {
        *slot = rowv("unused_tail"); // consumed on the host (state3, round 3, W16..W18)
    }
    w[3] = V::Nonce(g.name("w3"));
    w[4] = V::Const(PADDING_BIT);
    w[15] = V::Const(HEADER_BIT_LEN);
    w[16] = rowv("sched.x");
    w[17] = rowv("sched.y");
    let s0w3 = g.small_sigma0(&w[3]);
    let w18 = g.add(&[rowv("sched.z"), s0w3]);
    w[18] = g.bind("w18", w18);
    let w19 = g.add(&[rowv("sched.w"), w[3].clone()]);
    w[19] = g.bind("w19", w19);

    let state3: [V; 8] = std::array::from_fn(|i| quad("st", i));
    let mut h1 = History::new("", 3, state3);
    // Round 3: T1 = (h + Σ1(e) + Ch(e,f,g) + K3) + W3 and T2 were precomputed without W3.
    h1.round(
        &mut g,
        3,
        vec![rowv("r3t1"), w[3].clone()],
        Some(vec![rowv("r3t2")]),
    );
    for t in 4..64 {
        if t >= 20 {
            g.schedule(&mut w, t, &format!("w{t}"));
        }
        let wt = w[t].clone();
        h1.full_round(&mut g, t, &wt);
    }

    // --- second hash: the first hash (midstate + state), padding bit, zeros, length 256.
    let first = h1.final_state();
    let mut q: Vec<V> = vec![V::Const(0); 64];
    for (j, s) in first.iter().enumerate() {
        let sum = g.add(&[quad("mid", j), s.clone()]);
        q[j] = g.bind(&format!("qw{j}"), sum);
    }
    q[8] = V::Const(PADDING_BIT);
    q[15] = V::Const(HASH_BIT_LEN);
    let iv = IV.map(V::Const);
    let mut h2 = History::new("q", 0, iv);
    for t in 0..61 {
        if t >= 16 {
            g.schedule(&mut q, t, &format!("qw{t}"));
        }
        let wt = q[t].clone();
        if t < 57 {
            h2.full_round(&mut g, t, &wt);
        } else {
            // The new `a` of rounds 57..60 only matters after round 60: skip it here.
            let t1 = h2.t1_terms(&mut g, t, &wt);
            h2.round(&mut g, t, t1, None);
        }
    }
    // H7 = IV7 + h after round 63 = IV7 + e after round 60.
    let h7 = g.add(&[h2.e(61), V::Const(IV[7])]);
    let h7 = g.bind("h7", h7);
    assert_eq!(h7, V::Nonce(g.name("h7")));

    // --- finish (rare): the skipped `a` values, rounds 61..63, the full final state.
    g.section = Section::Finish;
    for t in 57..61 {
        let t2 = h2.t2_terms(&mut g, t);
        let mut terms = vec![h2.t1[t].clone().expect("kept T1")];
        terms.extend(t2);
        let sum = g.add(&terms);
        h2.a[t + 4] = Some(g.bind(&format!("qa{}", t + 1), sum));
    }
    for t in 61..64 {
        g.schedule(&mut q, t, &format!("qw{t}"));
        let wt = q[t].clone();
        h2.full_round(&mut g, t, &wt);
    }
    let fin = h2.final_state();
    let mut words = Vec::new();
    for (j, s) in fin.iter().enumerate() {
        let sum = g.add(&[s.clone(), V::Const(IV[j])]);
        words.push(g.bind(&format!("fin{j}"), sum).text());
    }
    let (lo, hi) = (g.name("fin_lo"), g.name("fin_hi"));
    g.k.finish
        .push(format!("let {lo} = vec4<u32>({});", words[..4].join(", ")));
    g.k.finish
        .push(format!("let {hi} = vec4<u32>({});", words[4..].join(", ")));
    g.k
}
