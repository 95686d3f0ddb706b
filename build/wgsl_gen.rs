//! The symbolic SHA-256d generator behind build.rs: writes one chain of SHA-256d as
//! straight-line WGSL with constants folded and row-invariant values hoisted.

use std::collections::HashSet;

use crate::sha256;
use crate::shape::{MadLevel, Probe};

/// Which additions of the hot path are written as the multiply-add `x * one + y`, where `one` is
/// a runtime 1 (`rows[ri].knobs.x`, always 1 on the host) that no compiler can fold. On NVIDIA
/// such a sum becomes an IMAD, which issues on the FMA pipe instead of the integer ALU pipe that
/// the adds (IADD3), bitwise ops (LOP3) and rotates (SHF) otherwise all share. The result is
/// identical; only the instruction mix changes. All zero (the default) is the normal kernel.
///
/// Each count takes terms from the front of the sum's list, and the first taken is the
/// outermost multiply-add (the last-arriving value, so the chain of adds ends with it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mad {
    /// T1 = h + Σ1(e) + Ch(e,f,g) + K + W: 0, 1 (Σ1) or 2 (Σ1 and Ch) multiply-adds.
    pub t1: usize,
    /// The new e = d + T1 as `T1 * one + d`.
    pub e: bool,
    /// The new a = Σ0(a) + Maj(a,b,c) + T1: 0, 1 (Σ0) or 2 (Σ0 and Maj) multiply-adds.
    pub t2: usize,
    /// Message word σ1(W[t-2]) + σ0(W[t-15]) + W[t-7] + W[t-16]: 0..=3 multiply-adds (σ1, σ0,
    /// W[t-7] in that order).
    pub sched: usize,
}

impl Mad {
    pub fn any(self) -> bool {
        self != Mad::default()
    }
}

impl Mad {
    /// The additions each level of `MadLevel` writes as multiply-adds (measured on an H100:
    /// BENCHMARKS.md, "Kernel variants").
    pub fn for_level(level: MadLevel) -> Mad {
        let (t1, e, t2, sched) = match level {
            MadLevel::None => (0, false, 0, 0),
            // One of T1's four additions.
            MadLevel::M1 => (1, false, 0, 0),
            // m1, and one of the new a's two additions.
            MadLevel::M2 => (1, false, 1, 0),
            // m2, and one of each message word's three additions.
            MadLevel::M3 => (1, false, 1, 1),
            // Every addition of the rounds and the schedule that involves a computed per-nonce
            // term: only h + K + W of T1 (and W[t-16] of a message word) stay additions.
            MadLevel::M4 => (2, true, 2, 3),
        };
        Mad { t1, e, t2, sched }
    }
}

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
pub struct Ops {
    pub add: usize,
    pub logic: usize,
    pub rotate: usize,
    pub shift: usize,
    /// Additions written as `x * one + y` (not counted in `add`).
    pub mad: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Body,
    Finish,
}

#[derive(Default)]
pub struct Kernel {
    pub prelude: Vec<String>,
    pub body: Vec<String>,
    pub finish: Vec<String>,
    pub ops: Ops,
}

struct Gen {
    k: Kernel,
    section: Section,
    names: HashSet<String>,
    row_lets: usize,
    /// Appended to every per-nonce name, so several chains can share one loop body.
    suffix: &'static str,
    probe: Probe,
    mad: Mad,
}

impl Gen {
    fn new(suffix: &'static str, probe: Probe, mad: Mad) -> Self {
        Gen {
            k: Kernel::default(),
            section: Section::Body,
            names: HashSet::new(),
            row_lets: 0,
            suffix,
            probe,
            mad,
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

    /// `mads[0] * one + (mads[1] * one + (... + (sum of rest)))`: each per-nonce term of
    /// `mads` is added by a multiply-add with the runtime 1; the others join `rest`.
    fn sum(&mut self, s: Sum) -> V {
        let (mads, plain): (Vec<V>, Vec<V>) = s.mads.into_iter().partition(V::is_nonce);
        let mut rest = s.rest;
        rest.extend(plain);
        let mut acc = self.add(&rest);
        for m in mads.iter().rev() {
            if acc == V::Const(0) {
                acc = m.clone();
                continue;
            }
            self.count(|o| o.mad += 1);
            acc = V::Nonce(format!("({} * one + {})", m.text(), acc.text()));
        }
        acc
    }

    /// Message word t >= 16 (FIPS 180-4 §6.2.2): σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
    fn schedule(&mut self, w: &mut [V], t: usize, name: &str) {
        let s1 = self.small_sigma1(&w[t - 2]);
        let s0 = self.small_sigma0(&w[t - 15]);
        let sum = match self.mad.sched {
            0 => Sum::plain(vec![s1, w[t - 7].clone(), s0, w[t - 16].clone()]),
            n => Sum::split(n, vec![s1, s0, w[t - 7].clone()], vec![w[t - 16].clone()]),
        };
        let sum = self.sum(sum);
        w[t] = self.bind(name, sum);
    }
}

/// A sum whose `mads` terms are added by multiply-adds (outermost first), see [`Gen::sum`].
struct Sum {
    mads: Vec<V>,
    rest: Vec<V>,
}

impl Sum {
    fn plain(rest: Vec<V>) -> Self {
        Sum {
            mads: Vec::new(),
            rest,
        }
    }

    /// The first `n` of `candidates` as multiply-adds; the other candidates, then `rest`, added.
    fn split(n: usize, mut candidates: Vec<V>, rest: Vec<V>) -> Self {
        let mut others = candidates.split_off(n.min(candidates.len()));
        others.extend(rest);
        Sum {
            mads: candidates,
            rest: others,
        }
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

    /// Round t. `t1` is T1 as a sum, `t2` is T2 or None to skip computing the new `a` (its T1
    /// is then kept for the finish path).
    fn round(&mut self, g: &mut Gen, t: usize, t1: Sum, t2: Option<Sum>) {
        let ti = t as isize;
        let d = self.a(ti - 3);
        // T1 feeds both the new `e` and the new `a`: name it unless it is a single per-nonce
        // value plus row-invariant parts (then each use costs one addition anyway).
        let nonce_terms = t1
            .mads
            .iter()
            .chain(&t1.rest)
            .filter(|v| v.is_nonce())
            .count();
        let shared = if nonce_terms <= 1 && t1.mads.is_empty() && t2.is_some() {
            t1.rest
        } else {
            let sum = g.sum(t1);
            vec![g.bind(&format!("{}t1_{t}", self.prefix), sum)]
        };
        // e = d + T1, as `T1 * one + d` when asked (`shared` holds one per-nonce term at most).
        let e_sum = if g.mad.e {
            let (mads, rest): (Vec<V>, Vec<V>) = shared.iter().cloned().partition(V::is_nonce);
            let mut e_rest = vec![d];
            e_rest.extend(rest);
            Sum { mads, rest: e_rest }
        } else {
            let mut e_terms = vec![d];
            e_terms.extend(shared.iter().cloned());
            Sum::plain(e_terms)
        };
        let e_sum = g.sum(e_sum);
        self.e[t + 4] = Some(g.bind(&format!("{}e{}", self.prefix, t + 1), e_sum));
        match t2 {
            Some(t2) => {
                let mut rest = shared;
                rest.extend(t2.rest);
                let a_sum = g.sum(Sum {
                    mads: t2.mads,
                    rest,
                });
                self.a[t + 4] = Some(g.bind(&format!("{}a{}", self.prefix, t + 1), a_sum));
            }
            None => self.t1[t] = Some(shared[0].clone()),
        }
    }

    /// T1 of a standard round: h + Σ1(e) + Ch(e,f,g) + K[t] + W[t].
    fn t1_terms(&self, g: &mut Gen, t: usize, w: &V) -> Sum {
        let ti = t as isize;
        let (e, f, gg, h) = (self.e(ti), self.e(ti - 1), self.e(ti - 2), self.e(ti - 3));
        let s1 = g.big_sigma1(&e);
        let ch = g.ch(&e, &f, &gg);
        let k = V::Const(sha256::K[t]);
        match g.mad.t1 {
            0 => Sum::plain(vec![h, s1, ch, k, w.clone()]),
            n => Sum::split(n, vec![s1, ch], vec![h, k, w.clone()]),
        }
    }

    /// T2: Σ0(a) + Maj(a,b,c).
    fn t2_terms(&self, g: &mut Gen, t: usize) -> Sum {
        let ti = t as isize;
        let (a, b, c) = (self.a(ti), self.a(ti - 1), self.a(ti - 2));
        let s0 = g.big_sigma0(&a);
        let maj = g.maj(&a, &b, &c);
        Sum::split(g.mad.t2, vec![s0, maj], Vec::new())
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
pub fn generate_kernel(suffix: &'static str, probe: Probe, mad: Mad) -> Kernel {
    use sha256::{HASH_BIT_LEN, HEADER_BIT_LEN, IV, PADDING_BIT};
    let mut g = Gen::new(suffix, probe, mad);
    if mad.any() {
        // The runtime 1 of the multiply-adds: the host always writes 1 here.
        g.k.prelude.push("let one = rows[ri].knobs.x;".to_string());
    }
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
        Sum::plain(vec![rowv("r3t1"), w[3].clone()]),
        Some(Sum::plain(vec![rowv("r3t2")])),
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
        let mut rest = vec![h2.t1[t].clone().expect("kept T1")];
        rest.extend(t2.rest);
        let sum = g.sum(Sum {
            mads: t2.mads,
            rest,
        });
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
