//! The shallow net of Tamm & Aljanaki (RecSys 2024): user and item vectors from the audio table
//! (a user is the mean of their items), one shared `Linear(d→d) + ReLU`, cosine score, hinge
//! loss (margin 0.2, 20 random negatives), early stopping on validation NDCG@10.
//!
//! Choice: the item table stays frozen and the user vector is always the mean of the history's
//! item vectors (the paper's initialisation rule, applied at every request) rather than a
//! learned per-user row. A new track is then rankable the moment it is embedded and a new user
//! the moment they have one play — the cold-start promise cadenza exists for — and the serving
//! `Ranker` needs no user id.

use candle_core::{D, Tensor};
use candle_nn::{Optimizer, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::nn::{Dense, const_var, dev};
use super::{Counts, CurvePoint, Ranker, TrainSet};
use crate::error::Result;
use crate::items::ItemTable;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShallowConfig {
    pub margin: f32,
    pub negatives: usize,
    pub batch: usize,
    pub lr: f64,
    pub max_epochs: usize,
    pub patience: usize,
    pub seed: u64,
}

impl Default for ShallowConfig {
    fn default() -> Self {
        ShallowConfig {
            margin: 0.2,
            negatives: 20,
            batch: 256,
            lr: 1e-3,
            max_epochs: 40,
            patience: 4,
            seed: 11,
        }
    }
}

/// A trained shallow net: the transformed, unit-length item table is precomputed, so scoring
/// is one mean, one `d × d` product and one scan.
#[derive(Debug, Clone)]
pub struct Shallow {
    items: ItemTable,
    /// `d × d` row-major (`out × in`) and `d`.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    transformed: Vec<f32>,
    pub curve: Vec<CurvePoint>,
}

fn transform(x: &[f32], w: &[f32], b: &[f32], d: usize) -> Vec<f32> {
    let mut out: Vec<f32> = (0..d)
        .map(|o| {
            (w[o * d..(o + 1) * d]
                .iter()
                .zip(x)
                .map(|(a, c)| a * c)
                .sum::<f32>()
                + b[o])
                .max(0.0)
        })
        .collect();
    let n = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if n > 0.0 {
        out.iter_mut().for_each(|v| *v /= n);
    }
    out
}

impl Shallow {
    /// A net from given weights (also how checkpoints load).
    pub fn from_weights(items: &ItemTable, w: Vec<f32>, b: Vec<f32>) -> Self {
        let d = items.dim;
        let transformed = (0..items.len())
            .flat_map(|i| transform(items.row(i), &w, &b, d))
            .collect();
        Shallow {
            items: items.clone(),
            w,
            b,
            transformed,
            curve: Vec::new(),
        }
    }

    /// Train on `data` with early stopping; returns the epoch with the best validation NDCG@10.
    pub fn train(items: &ItemTable, data: &TrainSet, cfg: &ShallowConfig) -> Result<Self> {
        let d = items.dim;
        let n = items.len();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let vm = VarMap::new();
        // Identity start: before any step the net ranks like KNN on the rectified vectors.
        let w = const_var(
            &vm,
            "w.weight",
            Tensor::eye(d, candle_core::DType::F32, &dev())?,
        )?;
        let b = const_var(
            &vm,
            "w.bias",
            Tensor::zeros(d, candle_core::DType::F32, &dev())?,
        )?;
        let layer = Dense { w, b };
        let table = Tensor::from_vec(items.data.clone(), (n, d), &dev())?;
        let users: Vec<Vec<f32>> = data.sequences.iter().map(|s| items.mean_of(s)).collect();
        let pairs: Vec<(usize, usize)> = data
            .sequences
            .iter()
            .enumerate()
            .flat_map(|(u, s)| s.iter().map(move |&i| (u, i)))
            .collect();
        let mut opt = candle_nn::AdamW::new(
            vm.all_vars(),
            candle_nn::ParamsAdamW {
                lr: cfg.lr,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let snapshot = |l: &Dense| -> Result<(Vec<f32>, Vec<f32>)> {
            Ok((l.w.flatten_all()?.to_vec1()?, l.b.to_vec1()?))
        };
        let (w0, b0) = snapshot(&layer)?;
        let mut best = Shallow::from_weights(items, w0, b0);
        let mut best_score = data.valid_ndcg10(|h| best.score_all(h, &Counts::new()));
        let mut curve = vec![CurvePoint {
            epoch: 0,
            train_loss: f64::NAN,
            valid_ndcg10: best_score,
        }];
        let mut since_best = 0;
        let norm = |x: &Tensor| -> Result<Tensor> {
            Ok(x.broadcast_div(&(x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()? + 1e-8)?)?)
        };
        for epoch in 1..=cfg.max_epochs {
            let mut order = pairs.clone();
            order.shuffle(&mut rng);
            let mut loss_sum = 0.0;
            let mut batches = 0;
            for chunk in order.chunks(cfg.batch.max(1)) {
                let bsz = chunk.len();
                let u: Vec<f32> = chunk
                    .iter()
                    .flat_map(|(u, _)| users[*u].iter().copied())
                    .collect();
                let pos: Vec<u32> = chunk.iter().map(|(_, i)| *i as u32).collect();
                let neg: Vec<u32> = (0..bsz * cfg.negatives)
                    .map(|_| rng.random_range(0..n) as u32)
                    .collect();
                let fu = norm(
                    &layer
                        .forward(&Tensor::from_vec(u, (bsz, d), &dev())?)?
                        .relu()?,
                )?;
                let fe = norm(&layer.forward(&table)?.relu()?)?;
                let fp = fe.index_select(&Tensor::new(pos, &dev())?, 0)?;
                let fneg = fe.index_select(&Tensor::new(neg, &dev())?, 0)?.reshape((
                    bsz,
                    cfg.negatives,
                    d,
                ))?;
                let sp = (&fu * &fp)?.sum_keepdim(1)?; // B × 1
                let sn = fneg.broadcast_mul(&fu.unsqueeze(1)?)?.sum(2)?; // B × K
                let loss = (sn.broadcast_sub(&sp)? + f64::from(cfg.margin))?
                    .relu()?
                    .mean_all()?;
                opt.backward_step(&loss)?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?);
                batches += 1;
            }
            let (w1, b1) = snapshot(&layer)?;
            let cand = Shallow::from_weights(items, w1, b1);
            let score = data.valid_ndcg10(|h| cand.score_all(h, &Counts::new()));
            curve.push(CurvePoint {
                epoch,
                train_loss: loss_sum / batches.max(1) as f64,
                valid_ndcg10: score,
            });
            tracing::debug!(epoch, score, "shallow epoch");
            if score > best_score {
                best_score = score;
                best = cand;
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= cfg.patience {
                    break;
                }
            }
        }
        best.curve = curve;
        Ok(best)
    }
}

impl Ranker for Shallow {
    fn name(&self) -> &str {
        "shallow"
    }

    fn score_all(&self, history: &[usize], _: &Counts) -> Vec<f32> {
        let d = self.items.dim;
        let u = transform(&self.items.mean_of(history), &self.w, &self.b, d);
        crate::items::dot_scan(&self.transformed, d, &u)
    }
}
