//! Rankers: every method scores the whole catalogue for one user's history, behind one trait
//! so that the evaluation and the ranking service treat them alike.

mod bert4rec;
mod checkpoint;
mod infer;
mod nn;
mod rerank;
mod shallow;
mod simple;

use std::collections::HashMap;

pub use bert4rec::{Bert4Rec, Bert4RecConfig, CurvePoint, ItemInput};
pub use checkpoint::{
    Checkpoint, Served, list_checkpoints, load_for_serving, load_ranker, save_for_serving,
    save_ranker,
};
pub use infer::SeqScorer;
pub use rerank::{PopFusion, mmr, personal_popularity};
pub use shallow::{Shallow, ShallowConfig};
pub use simple::{Knn, MultiCentroid, Popularity, RandomRanker};

/// A user's play counts per item (all time), for personalised popularity.
pub type Counts = HashMap<usize, u32>;

/// Counts of a history.
pub fn counts_of(history: &[usize]) -> Counts {
    let mut c = Counts::new();
    for &i in history {
        *c.entry(i).or_default() += 1;
    }
    c
}

/// A method that scores every catalogue item for a user (higher is better). Exclusion of
/// seen items and cut-offs happen outside, so one scorer serves every evaluation mode.
pub trait Ranker: Send + Sync + std::fmt::Debug {
    /// The name the ranking service knows it by (`knn`, `bert4rec_pop`, …).
    fn name(&self) -> &str;
    /// One score per catalogue item; `history` is in time order, oldest first.
    fn score_all(&self, history: &[usize], counts: &Counts) -> Vec<f32>;
}

/// What trained methods learn from: training sequences and validation (input, target) pairs.
#[derive(Debug, Clone, Default)]
pub struct TrainSet {
    pub sequences: Vec<Vec<usize>>,
    pub valid: Vec<(Vec<usize>, usize)>,
    /// Whether seen items are excluded when validation ranks (the `Novel` split mode).
    pub exclude_seen: bool,
}

impl TrainSet {
    /// Mean NDCG@10 of a scorer on the validation pairs (the early-stopping criterion).
    pub fn valid_ndcg10(&self, score: impl Fn(&[usize]) -> Vec<f32> + Sync) -> f64 {
        use rayon::prelude::*;
        let v: Vec<f64> = self
            .valid
            .par_iter()
            .map(|(input, target)| {
                let s = score(input);
                let ex = if self.exclude_seen {
                    input.iter().copied().collect()
                } else {
                    Default::default()
                };
                let top = crate::metrics::top_k(&s, 10, &ex);
                crate::metrics::accuracy(&top, &[*target], 10).ndcg
            })
            .collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }
}
