//! Re-ranking: personalised-popularity fusion and MMR diversity.

use std::collections::HashSet;

use super::{Counts, Ranker};

/// Personalised popularity of Abbattista et al. (RecSys 2024, "Enhancing sequential music
/// recommendation with personalized popularity awareness"): `log(c_j + ε) − log max_k(c_k + ε)`
/// with `c` the user's play counts, `ε = 0.01`. Zero for the most played item, about −4.6 − log
/// max for unheard ones, so it only reorders items the user has heard: it matters when
/// re-listens are targets.
pub fn personal_popularity(n_items: usize, counts: &Counts) -> Vec<f32> {
    const EPS: f64 = 0.01;
    let max = counts.values().copied().max().unwrap_or(0) as f64 + EPS;
    (0..n_items)
        .map(|j| {
            let c = counts.get(&j).copied().unwrap_or(0) as f64;
            ((c + EPS).ln() - max.ln()) as f32
        })
        .collect()
}

/// A sequential model's logits plus personalised popularity (`bert4rec_pop`).
#[derive(Debug)]
pub struct PopFusion<R> {
    pub inner: R,
    pub name: String,
}

impl<R: Ranker> Ranker for PopFusion<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_all(&self, history: &[usize], counts: &Counts) -> Vec<f32> {
        let mut s = self.inner.score_all(history, counts);
        let pp = personal_popularity(s.len(), counts);
        for (a, b) in s.iter_mut().zip(pp) {
            *a += b;
        }
        s
    }
}

/// Maximal Marginal Relevance (Carbonell & Goldstein, SIGIR 1998) over the best `pool` items:
/// greedily pick `argmax λ·rel(i) − (1−λ)·max_{s∈S} cos(i, s)`, relevance min-max scaled over
/// the pool. `λ = 1` is the plain ranking. `vectors` must be unit length.
pub fn mmr(
    scores: &[f32],
    vectors: &crate::items::ItemTable,
    k: usize,
    lambda: f32,
    exclude: &HashSet<usize>,
    pool: usize,
) -> Vec<usize> {
    let cand = crate::metrics::top_k(scores, pool.max(k), exclude);
    if cand.is_empty() {
        return cand;
    }
    let (lo, hi) = cand.iter().fold((f32::MAX, f32::MIN), |(l, h), &i| {
        (l.min(scores[i]), h.max(scores[i]))
    });
    let rel = |i: usize| {
        if hi > lo {
            (scores[i] - lo) / (hi - lo)
        } else {
            1.0
        }
    };
    let mut max_sim = vec![f32::MIN; cand.len()];
    let mut taken = vec![false; cand.len()];
    let mut out = Vec::with_capacity(k);
    while out.len() < k.min(cand.len()) {
        let mut best = None;
        let mut best_v = f32::MIN;
        for (c, &i) in cand.iter().enumerate() {
            if taken[c] {
                continue;
            }
            let div = if out.is_empty() { 0.0 } else { max_sim[c] };
            let v = lambda * rel(i) - (1.0 - lambda) * div;
            if best.is_none() || v > best_v {
                best = Some(c);
                best_v = v;
            }
        }
        let Some(b) = best else { break };
        taken[b] = true;
        let chosen = cand[b];
        out.push(chosen);
        for (c, &i) in cand.iter().enumerate() {
            let s: f32 = vectors
                .row(i)
                .iter()
                .zip(vectors.row(chosen))
                .map(|(x, y)| x * y)
                .sum();
            max_sim[c] = max_sim[c].max(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::ItemTable;

    #[test]
    fn personal_popularity_by_hand() {
        let c: Counts = [(0, 3), (2, 1)].into();
        let p = personal_popularity(3, &c);
        assert!((p[0] - 0.0).abs() < 1e-6);
        assert!((p[1] - ((0.01f64).ln() - 3.01f64.ln()) as f32).abs() < 1e-5);
        assert!((p[2] - (1.01f64.ln() - 3.01f64.ln()) as f32).abs() < 1e-5);
    }

    #[test]
    fn mmr_trades_relevance_for_diversity() {
        // Items 0 and 1 are identical, 2 is orthogonal and a little less relevant.
        let t = ItemTable::new("t", 2, vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        let s = [1.0, 0.95, 0.9];
        assert_eq!(mmr(&s, &t, 2, 1.0, &HashSet::new(), 10), vec![0, 1]);
        assert_eq!(mmr(&s, &t, 2, 0.5, &HashSet::new(), 10), vec![0, 2]);
    }

    proptest::proptest! {
        #[test]
        fn mmr_never_duplicates(scores in proptest::collection::vec(-1.0f32..1.0, 1..40), k in 0usize..50, lambda in 0.0f32..1.0) {
            let n = scores.len();
            let t = crate::embeddings::random_table(n, 4, 3).normalized();
            let ex: HashSet<usize> = (0..n).filter(|i| i % 5 == 0).collect();
            let out = mmr(&scores, &t, k, lambda, &ex, 20);
            let set: HashSet<usize> = out.iter().copied().collect();
            proptest::prop_assert_eq!(set.len(), out.len());
            proptest::prop_assert!(out.iter().all(|i| !ex.contains(i)));
            proptest::prop_assert_eq!(out.len(), k.min(n - ex.len()));
        }
    }
}
