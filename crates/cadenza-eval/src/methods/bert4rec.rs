//! BERT4Rec (Sun et al., CIKM 2019) as Tamm & Aljanaki use it: 2 layers, 2 heads, the item
//! table frozen at the audio embeddings (plus trainable mask and pad tokens), the output head
//! tied to that table, masked-item training with mask probability 0.2 and full-softmax
//! cross-entropy, early stopping on validation NDCG@10. [`ItemInput::IdOnly`] swaps the audio
//! table for a randomly initialised trainable one: the purely collaborative baseline.
//!
//! Hidden size = the embedding size, rounded down to a multiple of the head count and capped
//! at `max_hidden` (256); when that differs from the embedding size a trainable linear map
//! projects the frozen table down (VGG's 512/753-d layers; musicnn's 200-d needs none).
//! The frozen table is standardised per dimension and scaled to unit rows, so no single loud
//! dimension dominates attention or the tied logits.

use std::time::Instant;

use candle_core::{D, DType, Tensor};
use candle_nn::{Optimizer, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::infer::{Parts, SeqScorer};
use super::nn::{Dense, Norm, dev, dropout, normal_var};
use super::{Counts, Ranker, TrainSet};
use crate::error::Result;
use crate::items::ItemTable;

/// Where item representations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemInput {
    /// The audio embedding table, frozen.
    Frozen,
    /// A trainable table of this width, random init: no audio at all.
    IdOnly { dim: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bert4RecConfig {
    pub items: ItemInput,
    pub max_len: usize,
    pub layers: usize,
    pub heads: usize,
    pub max_hidden: usize,
    pub mask_prob: f64,
    /// Share of training sequences whose only mask is the last item, as at prediction time.
    pub last_mask_prob: f64,
    pub dropout: f32,
    pub batch: usize,
    pub lr: f64,
    pub max_epochs: usize,
    /// Epochs without a better validation NDCG@10 before stopping.
    pub patience: usize,
    /// Wall-clock cap on training, so a report run has a bounded cost (`None`: no cap).
    pub max_seconds: Option<f64>,
    pub seed: u64,
}

impl Default for Bert4RecConfig {
    fn default() -> Self {
        Bert4RecConfig {
            items: ItemInput::Frozen,
            max_len: 50,
            layers: 2,
            heads: 2,
            max_hidden: 256,
            mask_prob: 0.2,
            last_mask_prob: 0.25,
            dropout: 0.1,
            batch: 32,
            lr: 1e-3,
            max_epochs: 200,
            patience: 10,
            max_seconds: None,
            seed: 13,
        }
    }
}

/// One epoch of a learning curve (epoch 0 = before training).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_ndcg10: f64,
}

#[derive(Debug, Clone)]
struct Block {
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    n1: Norm,
    f1: Dense,
    f2: Dense,
    n2: Norm,
}

/// A BERT4Rec model. After training (or loading), scoring is one forward pass of the history.
pub struct Bert4Rec {
    pub config: Bert4RecConfig,
    pub name: String,
    pub curve: Vec<CurvePoint>,
    /// Why training stopped: `early_stopping`, `max_epochs` or `time_budget`.
    pub stopped: String,
    n_items: usize,
    hidden: usize,
    items: Tensor,
    proj: Option<Dense>,
    special: Tensor,
    pos: Tensor,
    emb_norm: Norm,
    blocks: Vec<Block>,
    head: Dense,
    head_norm: Norm,
    out_bias: Tensor,
    pub(crate) varmap: VarMap,
    /// The serving copy of the weights, made on first use after training or loading.
    fast: std::sync::OnceLock<SeqScorer>,
}

impl std::fmt::Debug for Bert4Rec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bert4Rec")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("n_items", &self.n_items)
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

/// The frozen table as BERT4Rec sees it (see the module docs).
pub(crate) fn prepare_frozen(items: &ItemTable) -> ItemTable {
    items.standardized().normalized()
}

impl Bert4Rec {
    /// A freshly initialised model; `items` is the audio table (ignored by `IdOnly` except for
    /// its length).
    pub fn init(items: &ItemTable, config: Bert4RecConfig) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let vm = VarMap::new();
        let n = items.len();
        let (table, d_item) = match config.items {
            ItemInput::Frozen => {
                let t = prepare_frozen(items);
                (Tensor::from_vec(t.data, (n, t.dim), &dev())?, t.dim)
            }
            ItemInput::IdOnly { dim } => {
                (normal_var(&vm, "items", &[n, dim], 0.02, &mut rng)?, dim)
            }
        };
        let heads = config.heads.max(1);
        let hidden = (d_item.min(config.max_hidden) / heads * heads).max(heads);
        let proj = if hidden != d_item {
            Some(Dense::new(&vm, "proj", d_item, hidden, &mut rng)?)
        } else {
            None
        };
        let special = normal_var(&vm, "special", &[2, hidden], 0.02, &mut rng)?;
        let pos = normal_var(&vm, "pos", &[config.max_len, hidden], 0.02, &mut rng)?;
        let emb_norm = Norm::new(&vm, "emb_norm", hidden)?;
        let blocks = (0..config.layers)
            .map(|l| {
                let p = |s: &str| format!("layer{l}.{s}");
                Ok(Block {
                    q: Dense::new(&vm, &p("q"), hidden, hidden, &mut rng)?,
                    k: Dense::new(&vm, &p("k"), hidden, hidden, &mut rng)?,
                    v: Dense::new(&vm, &p("v"), hidden, hidden, &mut rng)?,
                    o: Dense::new(&vm, &p("o"), hidden, hidden, &mut rng)?,
                    n1: Norm::new(&vm, &p("n1"), hidden)?,
                    f1: Dense::new(&vm, &p("f1"), hidden, 4 * hidden, &mut rng)?,
                    f2: Dense::new(&vm, &p("f2"), 4 * hidden, hidden, &mut rng)?,
                    n2: Norm::new(&vm, &p("n2"), hidden)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head = Dense::new(&vm, "head", hidden, hidden, &mut rng)?;
        let head_norm = Norm::new(&vm, "head_norm", hidden)?;
        let out_bias =
            super::nn::const_var(&vm, "out_bias", Tensor::zeros(n, DType::F32, &dev())?)?;
        let name = match config.items {
            ItemInput::Frozen => "bert4rec",
            ItemInput::IdOnly { .. } => "bert4rec_id",
        }
        .to_owned();
        Ok(Bert4Rec {
            config,
            name,
            curve: Vec::new(),
            stopped: String::new(),
            n_items: n,
            hidden,
            items: table,
            proj,
            special,
            pos,
            emb_norm,
            blocks,
            head,
            head_norm,
            out_bias,
            varmap: vm,
            fast: std::sync::OnceLock::new(),
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The serving forward pass ([`SeqScorer`]) of the current weights, built once.
    pub fn scorer(&self) -> Result<&SeqScorer> {
        if let Some(s) = self.fast.get() {
            return Ok(s);
        }
        let s = self.snapshot()?;
        Ok(self.fast.get_or_init(|| s))
    }

    /// A [`SeqScorer`] of the weights as they are now (training validates with it).
    fn snapshot(&self) -> Result<SeqScorer> {
        SeqScorer::new(Parts {
            repr: self.item_repr()?,
            special: &self.special,
            pos: &self.pos,
            emb_norm: &self.emb_norm,
            blocks: self
                .blocks
                .iter()
                .map(|b| [&b.q, &b.k, &b.v, &b.o, &b.f1, &b.f2])
                .collect(),
            norms: self.blocks.iter().map(|b| [&b.n1, &b.n2]).collect(),
            head: &self.head,
            head_norm: &self.head_norm,
            out_bias: &self.out_bias,
            heads: self.config.heads,
            max_len: self.config.max_len,
        })
    }

    /// Item representations in the hidden space (`n × hidden`): the input table and, tied, the
    /// output head.
    fn item_repr(&self) -> Result<Tensor> {
        Ok(match &self.proj {
            Some(p) => p.forward(&self.items)?,
            None => self.items.clone(),
        })
    }

    /// Hidden states `B × L × h` of left-padded token ids (`n` = mask, `n + 1` = pad).
    fn encode(
        &self,
        repr: &Tensor,
        tokens: &[u32],
        b: usize,
        l: usize,
        drop: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let h = self.hidden;
        let pad = (self.n_items + 1) as u32;
        let table = Tensor::cat(&[repr, &self.special], 0)?;
        let ids = Tensor::from_vec(tokens.to_vec(), b * l, &dev())?;
        let x = table.index_select(&ids, 0)?.reshape((b, l, h))?;
        let pos = self.pos.narrow(0, self.config.max_len - l, l)?;
        let mut x = self.emb_norm.forward(&x.broadcast_add(&pos)?)?;
        let mask: Vec<f32> = tokens
            .iter()
            .map(|&t| if t == pad { -1e9 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, l), &dev())?;
        let heads = self.config.heads.max(1);
        let dh = h / heads;
        let mut rng = drop;
        let p = if rng.is_some() {
            self.config.dropout
        } else {
            0.0
        };
        let mut drop_fn = |t: Tensor| -> Result<Tensor> {
            match rng.as_deref_mut() {
                Some(r) => dropout(&t, p, r),
                None => Ok(t),
            }
        };
        x = drop_fn(x)?;
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((b, l, heads, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        for blk in &self.blocks {
            let q = split(blk.q.forward(&x)?)?;
            let k = split(blk.k.forward(&x)?)?;
            let v = split(blk.v.forward(&x)?)?;
            let att =
                (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?.broadcast_add(&mask)?;
            let att = candle_nn::ops::softmax(&att, D::Minus1)?;
            let ctx = att
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, l, h))?;
            let a = drop_fn(blk.o.forward(&ctx)?)?;
            x = blk.n1.forward(&(x + a)?)?;
            let f = drop_fn(blk.f2.forward(&blk.f1.forward(&x)?.gelu_erf()?)?)?;
            x = blk.n2.forward(&(x + f)?)?;
        }
        Ok(x)
    }

    /// Logits over the catalogue for hidden states `M × h`.
    fn logits(&self, repr: &Tensor, hs: &Tensor) -> Result<Tensor> {
        let z = self
            .head_norm
            .forward(&self.head.forward(hs)?.gelu_erf()?)?;
        Ok(z.matmul(&repr.t()?)?.broadcast_add(&self.out_bias)?)
    }

    /// Next-item scores for many histories at once (one forward pass per batch of 256).
    pub fn score_batch(&self, histories: &[&[usize]]) -> Result<Vec<Vec<f32>>> {
        let repr = self.item_repr()?;
        let mut out = Vec::with_capacity(histories.len());
        for chunk in histories.chunks(256) {
            let l = chunk
                .iter()
                .map(|h| h.len().min(self.config.max_len - 1) + 1)
                .max()
                .unwrap_or(1);
            let tokens = self.tokens_for_prediction(chunk, l);
            let x = self.encode(&repr, &tokens, chunk.len(), l, None)?;
            let last = x.narrow(1, l - 1, 1)?.squeeze(1)?;
            let logits = self.logits(&repr, &last)?;
            out.extend(logits.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    fn tokens_for_prediction(&self, chunk: &[&[usize]], l: usize) -> Vec<u32> {
        let (mask, pad) = (self.n_items as u32, (self.n_items + 1) as u32);
        let mut tokens = Vec::with_capacity(chunk.len() * l);
        for h in chunk {
            let keep = &h[h.len().saturating_sub(l - 1)..];
            tokens.extend(std::iter::repeat_n(pad, l - 1 - keep.len()));
            tokens.extend(keep.iter().map(|&i| i as u32));
            tokens.push(mask);
        }
        tokens
    }

    /// Train with early stopping on validation NDCG@10; the best epoch's weights are kept.
    pub fn train(items: &ItemTable, data: &TrainSet, config: Bert4RecConfig) -> Result<Self> {
        let mut model = Bert4Rec::init(items, config)?;
        let cfg = model.config.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xb347);
        let mut opt = candle_nn::AdamW::new(
            model.varmap.all_vars(),
            candle_nn::ParamsAdamW {
                lr: cfg.lr,
                weight_decay: 0.01,
                ..Default::default()
            },
        )?;
        let seqs: Vec<&[usize]> = data
            .sequences
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| &s[s.len().saturating_sub(cfg.max_len)..])
            .collect();
        let best_path = tempfile_path("bert4rec-best");
        let mut best = model.valid_ndcg10(data)?;
        model.varmap.save(&best_path)?;
        model.curve.push(CurvePoint {
            epoch: 0,
            train_loss: f64::NAN,
            valid_ndcg10: best,
        });
        let start = Instant::now();
        let mut since_best = 0;
        model.stopped = "max_epochs".into();
        let batch = cfg.batch.max(1);
        for epoch in 1..=cfg.max_epochs {
            let mut order: Vec<usize> = (0..seqs.len()).collect();
            order.shuffle(&mut rng);
            // Length buckets: within each run of 8 batches, sequences of similar length share
            // a batch, so little of a batch is padding; the batches themselves are shuffled.
            for run in order.chunks_mut(batch * 8) {
                run.sort_by_key(|&i| seqs[i].len());
            }
            let mut batches: Vec<&[usize]> = order.chunks(batch).collect();
            batches.shuffle(&mut rng);
            let (mut loss_sum, mut nb) = (0.0, 0);
            for chunk in batches {
                let loss = model.train_step(&seqs, chunk, &mut rng)?;
                opt.backward_step(&loss)?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?);
                nb += 1;
            }
            let v = model.valid_ndcg10(data)?;
            model.curve.push(CurvePoint {
                epoch,
                train_loss: loss_sum / f64::from(nb.max(1)),
                valid_ndcg10: v,
            });
            tracing::debug!(epoch, v, "bert4rec epoch");
            if v > best {
                best = v;
                since_best = 0;
                model.varmap.save(&best_path)?;
            } else {
                since_best += 1;
            }
            if since_best >= cfg.patience {
                model.stopped = "early_stopping".into();
                break;
            }
            if cfg
                .max_seconds
                .is_some_and(|s| start.elapsed().as_secs_f64() > s)
            {
                model.stopped = "time_budget".into();
                break;
            }
        }
        model.varmap.load(&best_path)?;
        model.fast = std::sync::OnceLock::new();
        let _ = std::fs::remove_file(&best_path);
        Ok(model)
    }

    fn train_step(
        &self,
        seqs: &[&[usize]],
        chunk: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        let cfg = &self.config;
        let (mask, pad) = (self.n_items as u32, (self.n_items + 1) as u32);
        let l = chunk
            .iter()
            .map(|&i| seqs[i].len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut tokens = Vec::with_capacity(chunk.len() * l);
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (row, &i) in chunk.iter().enumerate() {
            let s = seqs[i];
            let off = l - s.len();
            tokens.extend(std::iter::repeat_n(pad, off));
            let last_only = rng.random::<f64>() < cfg.last_mask_prob;
            let mut masked: Vec<bool> = (0..s.len())
                .map(|j| {
                    if last_only {
                        j + 1 == s.len()
                    } else {
                        rng.random::<f64>() < cfg.mask_prob
                    }
                })
                .collect();
            if !masked.iter().any(|m| *m) {
                let j = rng.random_range(0..s.len());
                masked[j] = true;
            }
            for (j, &item) in s.iter().enumerate() {
                if masked[j] {
                    tokens.push(mask);
                    positions.push((row * l + off + j) as u32);
                    targets.push(item as u32);
                } else {
                    tokens.push(item as u32);
                }
            }
        }
        let repr = self.item_repr()?;
        let x = self.encode(&repr, &tokens, chunk.len(), l, Some(rng))?;
        let flat = x.reshape((chunk.len() * l, self.hidden))?;
        let hs = flat.index_select(&Tensor::new(positions, &dev())?, 0)?;
        let logits = self.logits(&repr, &hs)?;
        Ok(candle_nn::loss::cross_entropy(
            &logits,
            &Tensor::new(targets, &dev())?,
        )?)
    }

    /// Validation NDCG@10 of the current weights, scored with a [`SeqScorer`] snapshot on
    /// every core (the candle forward pass computes the same, see the tests).
    fn valid_ndcg10(&self, data: &TrainSet) -> Result<f64> {
        let scorer = self.snapshot()?;
        Ok(data.valid_ndcg10(|h| scorer.score(h)))
    }

    /// [`Bert4Rec::valid_ndcg10`] through candle (the tests compare the two).
    #[cfg(test)]
    fn valid_ndcg10_candle(&self, data: &TrainSet) -> Result<f64> {
        let inputs: Vec<&[usize]> = data.valid.iter().map(|(h, _)| h.as_slice()).collect();
        let scores = self.score_batch(&inputs)?;
        let mut sum = 0.0;
        for ((input, target), s) in data.valid.iter().zip(&scores) {
            let ex = if data.exclude_seen {
                input.iter().copied().collect()
            } else {
                Default::default()
            };
            let top = crate::metrics::top_k(s, 10, &ex);
            sum += crate::metrics::accuracy(&top, &[*target], 10).ndcg;
        }
        Ok(if scores.is_empty() {
            0.0
        } else {
            sum / scores.len() as f64
        })
    }

    /// Save trainable weights as safetensors (the frozen table comes from the embedding).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        Ok(self.varmap.save(path)?)
    }

    /// Load weights saved by [`Bert4Rec::save`] into a model built with the same config.
    pub fn load(items: &ItemTable, config: Bert4RecConfig, path: &std::path::Path) -> Result<Self> {
        let mut m = Bert4Rec::init(items, config)?;
        m.varmap.load(path)?;
        m.fast = std::sync::OnceLock::new();
        Ok(m)
    }
}

fn tempfile_path(stem: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "cadenza-{stem}-{}-{n}.safetensors",
        std::process::id()
    ))
}

impl Ranker for Bert4Rec {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_all(&self, history: &[usize], _: &Counts) -> Vec<f32> {
        match self.scorer() {
            Ok(s) => s.score(history),
            Err(e) => {
                tracing::warn!(error = %e, "bert4rec serving copy failed; scoring with candle");
                self.score_batch(&[history])
                    .ok()
                    .and_then(|mut v| v.pop())
                    .unwrap_or_else(|| vec![0.0; self.n_items])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embeddings::random_table;

    /// The serving path computes what the training forward pass computes, for histories
    /// empty, short, exactly full and longer than the model's window, with and without a
    /// projection (table wider than `max_hidden`).
    #[test]
    fn serving_scores_match_the_candle_forward_pass() {
        for (dim, max_hidden) in [(24, 256), (40, 16)] {
            let table = random_table(60, dim, 3);
            let cfg = Bert4RecConfig {
                max_len: 12,
                max_hidden,
                ..Default::default()
            };
            let mut m = Bert4Rec::init(&table, cfg).unwrap();
            // Non-trivial norms and bias, so a mistake in either shows.
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            for var in m.varmap.all_vars() {
                let noise: Vec<f32> = (0..var.elem_count())
                    .map(|_| rng.random_range(-0.3..0.3))
                    .collect();
                let t = Tensor::from_vec(noise, var.shape(), &dev()).unwrap();
                var.set(&(var.as_tensor() + t).unwrap()).unwrap();
            }
            m.fast = std::sync::OnceLock::new();
            let hists: Vec<Vec<usize>> = vec![
                vec![],
                vec![7],
                (0..11).map(|i| (i * 5) % 60).collect(),
                (0..30).map(|i| (i * 7) % 60).collect(),
            ];
            // Validation (what early stopping reads) agrees with the candle forward pass.
            let data = TrainSet {
                sequences: Vec::new(),
                valid: (0..40)
                    .map(|u| ((0..u % 15).map(|i| (u * 7 + i * 3) % 60).collect(), u % 60))
                    .collect(),
                exclude_seen: true,
            };
            let fast = m.valid_ndcg10(&data).unwrap();
            let slow = m.valid_ndcg10_candle(&data).unwrap();
            assert!((fast - slow).abs() < 1e-3, "{fast} vs {slow}");
            for h in &hists {
                let want = m.score_batch(&[h]).unwrap().pop().unwrap();
                let got = m.scorer().unwrap().score(h);
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-4, "dim {dim}, history {}: |Δ| {worst}", h.len());
            }
        }
    }
}
