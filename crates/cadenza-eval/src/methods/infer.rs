//! Serving-time BERT4Rec: one listener's forward pass without the training framework.
//!
//! Training needs candle (autograd, batches); serving one history does not, and candle's
//! per-operation cost (a tensor allocated for every step of ~60) was most of the 7 ms one
//! score took. [`SeqScorer`] copies the trained weights out once and runs the same arithmetic
//! on plain arrays with `ndarray`'s matrix product, and skips work the answer
//! never reads: a single history needs no padding or attention mask, and in the last layer
//! only the masked (last) position is computed past the key and value projections.
//! `bert4rec::tests` checks it against the candle forward pass to 1e-4.

use candle_core::Tensor;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

use super::nn::{Dense, Norm};
use crate::error::Result;

/// `C (m × n) = A (m × k) · B (k × n)`, any strides (in elements), overwriting `C`
/// (ndarray's safe front to the `matrixmultiply` kernels, which pick AVX/FMA at run time).
fn matmul(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    c: &mut [f32],
    (c_rs, c_cs): (usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        }
    };
    let a = ArrayView2::from_shape((m, k).strides((a_rs, a_cs)), &a[..last(m, k, a_rs, a_cs)])
        .expect("A in bounds");
    let b = ArrayView2::from_shape((k, n).strides((b_rs, b_cs)), &b[..last(k, n, b_rs, b_cs)])
        .expect("B in bounds");
    let end = last(m, n, c_rs, c_cs);
    let mut c = ArrayViewMut2::from_shape((m, n).strides((c_rs, c_cs)), &mut c[..end])
        .expect("C in bounds");
    general_mat_mul(1.0, &a, &b, 0.0, &mut c);
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// `x · Wᵀ + b` with `W` stored `out × in` as candle trains it.
#[derive(Debug, Clone)]
struct Linear {
    w: Vec<f32>,
    b: Vec<f32>,
    din: usize,
    dout: usize,
}

impl Linear {
    /// Several layers of the same input width as one (outputs side by side).
    fn stack(parts: &[&Linear]) -> Linear {
        Linear {
            w: parts.iter().flat_map(|p| p.w.iter().copied()).collect(),
            b: parts.iter().flat_map(|p| p.b.iter().copied()).collect(),
            din: parts[0].din,
            dout: parts.iter().map(|p| p.dout).sum(),
        }
    }

    fn from(d: &Dense) -> Result<Self> {
        let (dout, din) = d.w.dims2()?;
        Ok(Linear {
            w: flat(&d.w)?,
            b: flat(&d.b)?,
            din,
            dout,
        })
    }

    fn apply(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.clear();
        out.resize(rows * self.dout, 0.0);
        matmul(
            (rows, self.dout, self.din),
            x,
            (self.din, 1),
            &self.w,
            (1, self.din),
            out,
            (self.dout, 1),
        );
        for row in out.chunks_mut(self.dout) {
            row.iter_mut().zip(&self.b).for_each(|(o, b)| *o += b);
        }
    }
}

/// Layer norm over rows of width `g.len()` (candle's `layer_norm_slow`, eps 1e-6).
#[derive(Debug, Clone)]
struct LayerNorm {
    g: Vec<f32>,
    b: Vec<f32>,
}

impl LayerNorm {
    fn from(n: &Norm) -> Result<Self> {
        Ok(LayerNorm {
            g: flat(&n.g)?,
            b: flat(&n.b)?,
        })
    }

    fn apply(&self, x: &mut [f32]) {
        let h = self.g.len();
        for row in x.chunks_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            row.iter_mut().for_each(|v| *v -= mean);
            let var = row.iter().map(|v| v * v).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + 1e-6).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.g).zip(&self.b) {
                *v = *v * inv * g + b;
            }
        }
    }
}

/// `erf` for `f32` as a rational function of `x` on `[-4, 4]` (outside, ±1 to f32 precision):
/// the odd/even polynomial pair of Eigen's and XLA's vectorised `erf`, a few ulp from the exact
/// value. No `exp`, no branch and no `mul_add` (a libm call without the FMA target feature), so
/// the loop vectorises; candle's exact `erf` goes through
/// `f64` and was most of a forward pass's time at 40k activations.
#[inline]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

fn gelu(x: &mut [f32]) {
    for v in x {
        *v = (erf(*v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * *v;
    }
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

#[derive(Debug, Clone)]
struct Block {
    /// Query, key and value projections stacked (`3h × h`): one product for all three.
    qkv: Linear,
    /// Key and value stacked (`2h × h`), and the query alone: the last layer's split.
    kv: Linear,
    q: Linear,
    o: Linear,
    n1: LayerNorm,
    f1: Linear,
    f2: Linear,
    n2: LayerNorm,
}

/// The weights a trained [`super::Bert4Rec`] hands over for scoring (see the module docs).
#[derive(Debug, Clone)]
pub struct SeqScorer {
    n_items: usize,
    hidden: usize,
    heads: usize,
    max_len: usize,
    /// `(n + 2) × h`: the item representations, then the mask and pad tokens.
    table: Vec<f32>,
    pos: Vec<f32>,
    emb_norm: LayerNorm,
    blocks: Vec<Block>,
    head: Linear,
    head_norm: LayerNorm,
    out_bias: Vec<f32>,
}

/// What [`SeqScorer::new`] copies out of the candle model.
pub(crate) struct Parts<'a> {
    pub repr: Tensor,
    pub special: &'a Tensor,
    pub pos: &'a Tensor,
    pub emb_norm: &'a Norm,
    pub blocks: Vec<[&'a Dense; 6]>,
    pub norms: Vec<[&'a Norm; 2]>,
    pub head: &'a Dense,
    pub head_norm: &'a Norm,
    pub out_bias: &'a Tensor,
    pub heads: usize,
    pub max_len: usize,
}

impl SeqScorer {
    pub(crate) fn new(p: Parts<'_>) -> Result<Self> {
        let (n_items, hidden) = p.repr.dims2()?;
        let mut table = flat(&p.repr)?;
        table.extend(flat(p.special)?);
        let blocks = p
            .blocks
            .iter()
            .zip(&p.norms)
            .map(|([q, k, v, o, f1, f2], [n1, n2])| {
                let (q, k, v) = (Linear::from(q)?, Linear::from(k)?, Linear::from(v)?);
                Ok(Block {
                    qkv: Linear::stack(&[&q, &k, &v]),
                    kv: Linear::stack(&[&k, &v]),
                    q,
                    o: Linear::from(o)?,
                    n1: LayerNorm::from(n1)?,
                    f1: Linear::from(f1)?,
                    f2: Linear::from(f2)?,
                    n2: LayerNorm::from(n2)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SeqScorer {
            n_items,
            hidden,
            heads: p.heads.max(1),
            max_len: p.max_len,
            table,
            pos: flat(p.pos)?,
            emb_norm: LayerNorm::from(p.emb_norm)?,
            blocks,
            head: Linear::from(p.head)?,
            head_norm: LayerNorm::from(p.head_norm)?,
            out_bias: flat(p.out_bias)?,
        })
    }

    /// Next-item logits over the whole catalogue for one history (oldest first; items at or
    /// past the catalogue size are ignored).
    pub fn score(&self, history: &[usize]) -> Vec<f32> {
        let h = self.hidden;
        let history: Vec<usize> = history
            .iter()
            .copied()
            .filter(|&i| i < self.n_items)
            .collect();
        let keep = &history[history.len().saturating_sub(self.max_len - 1)..];
        let l = keep.len() + 1;
        // Embeddings of the history and the mask token, with the positions of the last `l`
        // slots (left padding in training puts a history's end at the last position).
        let mut x = vec![0f32; l * h];
        for (j, row) in x.chunks_mut(h).enumerate() {
            let tok = keep.get(j).copied().unwrap_or(self.n_items);
            let e = &self.table[tok * h..(tok + 1) * h];
            let p = &self.pos[(self.max_len - l + j) * h..(self.max_len - l + j + 1) * h];
            for ((r, e), p) in row.iter_mut().zip(e).zip(p) {
                *r = e + p;
            }
        }
        self.emb_norm.apply(&mut x);
        let dh = h / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let (mut q, mut kv, mut ctx, mut a, mut f) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut att = vec![0f32; l * l];
        let mut rows = l;
        for (bi, blk) in self.blocks.iter().enumerate() {
            // Past the last layer's key/value projections only the last position matters.
            let first = if bi + 1 == self.blocks.len() {
                rows - 1
            } else {
                0
            };
            let m = rows - first;
            // Where Q, K and V sit: row strides of the Q and K/V buffers, K and V offsets.
            let (q_rs, kv_rs, k_off, v_off) = if first == 0 {
                blk.qkv.apply(&x, rows, &mut kv);
                (3 * h, 3 * h, h, 2 * h)
            } else {
                blk.kv.apply(&x, rows, &mut kv);
                blk.q.apply(&x[first * h..], m, &mut q);
                (h, 2 * h, 0, h)
            };
            let qs: &[f32] = if first == 0 { &kv } else { &q };
            ctx.clear();
            ctx.resize(m * h, 0.0);
            for head in 0..self.heads {
                let off = head * dh;
                let s = &mut att[..m * rows];
                matmul(
                    (m, rows, dh),
                    &qs[off..],
                    (q_rs, 1),
                    &kv[k_off + off..],
                    (1, kv_rs),
                    s,
                    (rows, 1),
                );
                for row in s.chunks_mut(rows) {
                    row.iter_mut().for_each(|v| *v *= scale);
                    softmax(row);
                }
                matmul(
                    (m, dh, rows),
                    s,
                    (rows, 1),
                    &kv[v_off + off..],
                    (kv_rs, 1),
                    &mut ctx[off..],
                    (h, 1),
                );
            }
            blk.o.apply(&ctx, m, &mut a);
            let mut y: Vec<f32> = x[first * h..].iter().zip(&a).map(|(x, a)| x + a).collect();
            blk.n1.apply(&mut y);
            blk.f1.apply(&y, m, &mut f);
            gelu(&mut f);
            blk.f2.apply(&f, m, &mut a);
            y.iter_mut().zip(&a).for_each(|(y, a)| *y += a);
            blk.n2.apply(&mut y);
            x = y;
            rows = m;
        }
        let last = &x[(rows - 1) * h..];
        let mut z = Vec::new();
        self.head.apply(last, 1, &mut z);
        gelu(&mut z);
        self.head_norm.apply(&mut z);
        let mut out = self.out_bias.clone();
        let mut logits = vec![0f32; self.n_items];
        matmul(
            (self.n_items, 1, h),
            &self.table,
            (h, 1),
            &z,
            (1, 1),
            &mut logits,
            (1, 1),
        );
        out.iter_mut().zip(&logits).for_each(|(o, l)| *o += l);
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fast_erf_matches_the_exact_one() {
        let worst = (-6000..=6000)
            .map(|i| i as f32 / 1000.0)
            .map(|x| (super::erf(x) - candle_core::cpu::erf::erf_f32(x)).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "|Δ| {worst}");
    }
}
