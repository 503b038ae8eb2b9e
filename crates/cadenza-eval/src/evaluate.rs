//! Evaluate one ranker on test cases: full ranking, accuracy at 10 and 50 with confidence
//! intervals, beyond-accuracy measures at 10, and a per-group (archetype) breakdown.

use std::collections::{BTreeMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::items::ItemTable;
use crate::methods::{Ranker, counts_of, mmr};
use crate::metrics::{self, MeanCi, Popularity};

/// One user to predict for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub user_id: String,
    pub input: Vec<usize>,
    pub target: usize,
    /// Breakdown key, e.g. the user's dominant archetype.
    pub group: String,
}

/// What the evaluation needs besides the ranker.
#[derive(Debug, Clone)]
pub struct EvalContext {
    /// Training popularity (novelty, long tail, serendipity's primitive recommender).
    pub popularity: Popularity,
    /// Unit vectors in which intra-list diversity is measured (one space for every method so
    /// the numbers compare).
    pub diversity_space: ItemTable,
    pub exclude_seen: bool,
    /// MMR re-ranking of the top-10 with this λ (None: plain ranking).
    pub mmr_lambda: Option<f32>,
}

/// Results of one method on one item table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: String,
    pub embedding: String,
    pub hr10: MeanCi,
    pub recall10: MeanCi,
    pub ndcg10: MeanCi,
    pub mrr10: MeanCi,
    pub hr50: MeanCi,
    pub recall50: MeanCi,
    pub ndcg50: MeanCi,
    pub mrr50: MeanCi,
    pub diversity10: f64,
    pub novelty10: f64,
    pub coverage10: f64,
    pub long_tail10: f64,
    pub serendipity10: f64,
    /// NDCG@10 per group.
    pub by_group: BTreeMap<String, MeanCi>,
}

struct PerUser {
    a10: metrics::Accuracy,
    a50: metrics::Accuracy,
    list10: Vec<usize>,
}

pub fn evaluate(
    ranker: &dyn Ranker,
    embedding: &str,
    cases: &[TestCase],
    ctx: &EvalContext,
) -> MethodResult {
    let primitive = ctx.popularity.top(10);
    let per: Vec<PerUser> = cases
        .par_iter()
        .map(|c| {
            let scores = ranker.score_all(&c.input, &counts_of(&c.input));
            let ex: HashSet<usize> = if ctx.exclude_seen {
                c.input.iter().copied().collect()
            } else {
                HashSet::new()
            };
            let top50 = metrics::top_k(&scores, 50, &ex);
            let list10 = match ctx.mmr_lambda {
                Some(l) => mmr(&scores, &ctx.diversity_space, 10, l, &ex, 50),
                None => top50.iter().take(10).copied().collect(),
            };
            PerUser {
                a10: metrics::accuracy(&list10, &[c.target], 10),
                a50: metrics::accuracy(&top50, &[c.target], 50),
                list10,
            }
        })
        .collect();
    let col = |f: &dyn Fn(&PerUser) -> f64| MeanCi::of(&per.iter().map(f).collect::<Vec<_>>());
    let head = ctx.popularity.short_head();
    let n = per.len().max(1) as f64;
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (c, p) in cases.iter().zip(&per) {
        groups.entry(c.group.clone()).or_default().push(p.a10.ndcg);
    }
    MethodResult {
        method: ranker.name().to_owned(),
        embedding: embedding.to_owned(),
        hr10: col(&|p| p.a10.hit),
        recall10: col(&|p| p.a10.recall),
        ndcg10: col(&|p| p.a10.ndcg),
        mrr10: col(&|p| p.a10.mrr),
        hr50: col(&|p| p.a50.hit),
        recall50: col(&|p| p.a50.recall),
        ndcg50: col(&|p| p.a50.ndcg),
        mrr50: col(&|p| p.a50.mrr),
        diversity10: per
            .iter()
            .map(|p| {
                metrics::intra_list_diversity(&p.list10, |i| ctx.diversity_space.row(i).to_vec())
            })
            .sum::<f64>()
            / n,
        novelty10: per
            .iter()
            .map(|p| ctx.popularity.novelty(&p.list10))
            .sum::<f64>()
            / n,
        coverage10: metrics::coverage(ctx.diversity_space.len(), per.iter().map(|p| &p.list10)),
        long_tail10: per
            .iter()
            .map(|p| metrics::long_tail_share(&p.list10, &head))
            .sum::<f64>()
            / n,
        serendipity10: cases
            .iter()
            .zip(&per)
            .map(|(c, p)| metrics::serendipity(&p.list10, &primitive, &[c.target]))
            .sum::<f64>()
            / n,
        by_group: groups
            .into_iter()
            .map(|(g, v)| (g, MeanCi::of(&v)))
            .collect(),
    }
}
