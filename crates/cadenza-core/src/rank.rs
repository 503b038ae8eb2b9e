//! Ranking pieces as pure functions: similarity, merging candidate lists, leaving out what
//! was heard, MMR diversification and the personalised-popularity term. The ranking service
//! fetches candidates from the index and composes these.

use std::collections::{BTreeSet, HashMap};

use crate::TrackId;

/// Cosine similarity in -1..=1, accumulated in f64. Zero when either vector is empty or
/// all zeros, or when the dimensions differ (vectors of different models are unrelated,
/// and a silent zip over the shorter one would be a wrong answer, not an error).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    // Four independent sums of each (in f64, so the order barely matters): the compiler can
    // keep them in vector registers instead of waiting on one long chain of additions.
    let (mut dot, mut na, mut nb) = ([0f64; 4], [0f64; 4], [0f64; 4]);
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xs, ys) in ca.zip(cb) {
        for l in 0..4 {
            let (x, y) = (f64::from(xs[l]), f64::from(ys[l]));
            dot[l] += x * y;
            na[l] += x * x;
            nb[l] += y * y;
        }
    }
    for (x, y) in ra.iter().zip(rb) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot[0] += x * y;
        na[0] += x * x;
        nb[0] += y * y;
    }
    let sum = |v: [f64; 4]| (v[0] + v[1]) + (v[2] + v[3]);
    let (dot, na, nb) = (sum(dot), sum(na), sum(nb));
    if na == 0.0 || nb == 0.0 || !(na.is_finite() && nb.is_finite()) {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0) as f32
}

/// A track proposed for a list: its vector (for re-scoring, MMR and explanations; may be
/// empty when the source had none) and a score, higher = better.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: TrackId,
    pub vector: Vec<f32>,
    pub score: f32,
}

/// Best first; equal scores by id so lists are reproducible. NaN scores sort last.
fn by_score(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let key = |c: &Candidate| {
        if c.score.is_nan() {
            f32::NEG_INFINITY
        } else {
            c.score
        }
    };
    key(b).total_cmp(&key(a)).then_with(|| a.id.cmp(&b.id))
}

/// Merges candidate lists (e.g. one index query per profile centroid, or per recent track)
/// into one list without duplicates, best first.
///
/// With `profiles`, each candidate is re-scored as its best cosine to any profile vector —
/// the multi-interest rule: a track close to one of a listener's tastes is a good
/// recommendation even if it is far from their mean. Without profiles the index scores are
/// kept. A track in several lists keeps its best score.
pub fn knn_candidates(
    profiles: &[&[f32]],
    lists: impl IntoIterator<Item = Vec<Candidate>>,
) -> Vec<Candidate> {
    let mut best: HashMap<TrackId, Candidate> = HashMap::new();
    for mut c in lists.into_iter().flatten() {
        if !profiles.is_empty() {
            c.score = profiles
                .iter()
                .map(|p| cosine(p, &c.vector))
                .fold(f32::NEG_INFINITY, f32::max);
        }
        match best.get_mut(&c.id) {
            Some(b) if by_score(&c, b).is_lt() => *b = c,
            Some(_) => {}
            None => {
                best.insert(c.id.clone(), c);
            }
        }
    }
    let mut out: Vec<Candidate> = best.into_values().collect();
    out.sort_by(by_score);
    out
}

/// Leaves out tracks the listener heard (played or skipped), unless repeats are wanted.
pub fn exclude_heard(
    candidates: Vec<Candidate>,
    heard: &BTreeSet<TrackId>,
    include_heard: bool,
) -> Vec<Candidate> {
    if include_heard {
        return candidates;
    }
    candidates
        .into_iter()
        .filter(|c| !heard.contains(&c.id))
        .collect()
}

/// Maximal marginal relevance: picks `k` candidates greedily by
/// `(1 − λ)·relevance − λ·(max cosine to the already picked)`.
///
/// Relevance is the score min-max normalised over the candidates, so λ means the same for
/// every ranker whatever its score scale. λ is clamped to 0..=1 (NaN = 0); λ = 0 gives the
/// top `k` by score, in score order. Duplicate ids keep their best entry. Ties break by id.
pub fn mmr(candidates: &[Candidate], lambda: f32, k: usize) -> Vec<Candidate> {
    let lambda = if lambda.is_nan() {
        0.0
    } else {
        lambda.clamp(0.0, 1.0)
    };
    let mut pool: Vec<Candidate> = knn_candidates(&[], [candidates.to_vec()]);
    if lambda == 0.0 || pool.len() <= 1 {
        pool.truncate(k);
        return pool;
    }
    let finite = pool.iter().map(|c| c.score).filter(|s| s.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    let rel = |s: f32| {
        if s.is_nan() || s == f32::NEG_INFINITY {
            0.0
        } else if s == f32::INFINITY || hi <= lo {
            1.0
        } else {
            (s - lo) / (hi - lo)
        }
    };
    let mut max_sim = vec![f32::NEG_INFINITY; pool.len()];
    let mut taken = vec![false; pool.len()];
    let mut out = Vec::with_capacity(k.min(pool.len()));
    while out.len() < k {
        let mut pick: Option<(usize, f32)> = None;
        for (i, c) in pool.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let penalty = if max_sim[i] == f32::NEG_INFINITY {
                0.0
            } else {
                max_sim[i]
            };
            let m = (1.0 - lambda) * rel(c.score) - lambda * penalty;
            // Pool is sorted best first, so strict `>` keeps the better-ranked on ties.
            if pick.is_none_or(|(_, b)| m > b) {
                pick = Some((i, m));
            }
        }
        let Some((i, _)) = pick else { break };
        taken[i] = true;
        for (j, c) in pool.iter().enumerate() {
            if !taken[j] {
                max_sim[j] = max_sim[j].max(cosine(&c.vector, &pool[i].vector));
            }
        }
        out.push(pool[i].clone());
    }
    out
}

/// ε of the personalised-popularity term (Abbattista et al., RecSys 2024).
pub const POP_EPSILON: f32 = 0.01;

/// Personalised popularity of a track the listener played `count` times, when their most
/// played track has `max_count` plays: `ln(c + ε) − ln(max + ε)`. It is 0 for the
/// favourite, negative for the rest (about −4.6 − ln(max + ε) for unplayed tracks), and is
/// added to a sequential model's logits so repeat listening is predicted.
pub fn personal_popularity(count: u32, max_count: u32) -> f32 {
    let max = max_count.max(count) as f32;
    (count as f32 + POP_EPSILON).ln() - (max + POP_EPSILON).ln()
}

#[cfg(test)]
mod tests;
