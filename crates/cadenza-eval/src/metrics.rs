//! Ranking metrics over a full ranking of the catalogue, their means with confidence intervals,
//! and beyond-accuracy measures (diversity, novelty, coverage, long tail, serendipity).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Indices of the `k` best scores, best first; ties go to the lower index, `exclude`d items
/// never appear. Deterministic so that metrics and served lists agree.
pub fn top_k(scores: &[f32], k: usize, exclude: &HashSet<usize>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).filter(|i| !exclude.contains(i)).collect();
    let by = |a: &usize, b: &usize| {
        scores[*b]
            .partial_cmp(&scores[*a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b))
    };
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, by);
        idx.truncate(k);
    }
    idx.sort_unstable_by(by);
    idx
}

/// Accuracy of one ranked list against the relevant items, at cut-off `k`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub hit: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub mrr: f64,
}

/// HitRate, Recall, binary NDCG (ideal DCG over `min(|relevant|, k)` hits) and MRR at `k`.
pub fn accuracy(ranked: &[usize], relevant: &[usize], k: usize) -> Accuracy {
    if relevant.is_empty() {
        return Accuracy::default();
    }
    let rel: HashSet<usize> = relevant.iter().copied().collect();
    let mut dcg = 0.0;
    let mut hits = 0usize;
    let mut first = None;
    for (pos, item) in ranked.iter().take(k).enumerate() {
        if rel.contains(item) {
            dcg += 1.0 / (pos as f64 + 2.0).log2();
            hits += 1;
            first.get_or_insert(pos);
        }
    }
    let idcg: f64 = (0..rel.len().min(k))
        .map(|p| 1.0 / (p as f64 + 2.0).log2())
        .sum();
    Accuracy {
        hit: f64::from(u8::from(hits > 0)),
        recall: hits as f64 / rel.len() as f64,
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        mrr: first.map_or(0.0, |p| 1.0 / (p as f64 + 1.0)),
    }
}

/// A mean over users with a 95% confidence interval from the normal approximation
/// (mean ± 1.96·s/√n, s the sample standard deviation): with hundreds of users the sampling
/// distribution of a mean of bounded per-user scores is close to normal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl MeanCi {
    pub fn of(values: &[f64]) -> MeanCi {
        let n = values.len();
        if n == 0 {
            return MeanCi::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let h = 1.96 * (var / n as f64).sqrt();
        MeanCi {
            mean,
            lo: mean - h,
            hi: mean + h,
            n,
        }
    }

    /// `0.123 ± 0.010`, for tables.
    pub fn show(&self) -> String {
        format!("{:.3} ± {:.3}", self.mean, (self.hi - self.lo) / 2.0)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        d += f64::from(*x) * f64::from(*y);
        na += f64::from(*x).powi(2);
        nb += f64::from(*y).powi(2);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        d / (na.sqrt() * nb.sqrt())
    }
}

/// Intra-list diversity: mean pairwise `1 − cosine` of the listed items' vectors (0 for < 2).
pub fn intra_list_diversity(list: &[usize], vector: impl Fn(usize) -> Vec<f32>) -> f64 {
    let vs: Vec<Vec<f32>> = list.iter().map(|&i| vector(i)).collect();
    let mut sum = 0.0;
    let mut n = 0usize;
    for i in 0..vs.len() {
        for j in i + 1..vs.len() {
            sum += 1.0 - cosine(&vs[i], &vs[j]);
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Who played what in training: the reference for novelty, long tail and serendipity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Popularity {
    /// Distinct users who played each item.
    pub users: Vec<usize>,
    /// Plays of each item.
    pub plays: Vec<usize>,
    pub n_users: usize,
}

impl Popularity {
    pub fn from_histories<'a>(
        n_items: usize,
        histories: impl IntoIterator<Item = &'a [usize]>,
    ) -> Self {
        let mut users = vec![0; n_items];
        let mut plays = vec![0; n_items];
        let mut n_users = 0;
        for h in histories {
            n_users += 1;
            let mut seen = HashSet::new();
            for &i in h {
                plays[i] += 1;
                if seen.insert(i) {
                    users[i] += 1;
                }
            }
        }
        Popularity {
            users,
            plays,
            n_users,
        }
    }

    /// Novelty of a list: mean `−log2 p(i)`, `p(i)` = share of users who played `i`; an item
    /// nobody played counts as played by one user, so novelty stays finite.
    pub fn novelty(&self, list: &[usize]) -> f64 {
        if list.is_empty() || self.n_users == 0 {
            return 0.0;
        }
        let n = self.n_users as f64;
        list.iter()
            .map(|&i| -((self.users[i].max(1) as f64) / n).log2())
            .sum::<f64>()
            / list.len() as f64
    }

    /// The short head: most-played items that together hold 20% of all plays (Abdollahpouri et
    /// al., RecSys 2017, "Controlling popularity bias"); everything else is the long tail.
    pub fn short_head(&self) -> HashSet<usize> {
        let total: usize = self.plays.iter().sum();
        let mut order: Vec<usize> = (0..self.plays.len()).collect();
        order.sort_by(|a, b| self.plays[*b].cmp(&self.plays[*a]).then(a.cmp(b)));
        let mut head = HashSet::new();
        let mut acc = 0;
        for i in order {
            if acc as f64 >= 0.2 * total as f64 {
                break;
            }
            acc += self.plays[i];
            head.insert(i);
        }
        head
    }

    /// The `k` most played items: the "primitive" recommender serendipity is measured against.
    pub fn top(&self, k: usize) -> Vec<usize> {
        let s: Vec<f32> = self.plays.iter().map(|&p| p as f32).collect();
        top_k(&s, k, &HashSet::new())
    }
}

/// Share of a list's items in the long tail (outside `head`).
pub fn long_tail_share(list: &[usize], head: &HashSet<usize>) -> f64 {
    if list.is_empty() {
        return 0.0;
    }
    list.iter().filter(|i| !head.contains(i)).count() as f64 / list.len() as f64
}

/// Serendipity after Ge, Delgado-Battenfeld & Jannach, "Beyond accuracy: evaluating recommender
/// systems by coverage and serendipity" (RecSys 2010): the share of the list that is both
/// unexpected — absent from a primitive recommender's list (`primitive`, here global popularity)
/// — and useful (relevant: a held-out target).
pub fn serendipity(list: &[usize], primitive: &[usize], relevant: &[usize]) -> f64 {
    if list.is_empty() {
        return 0.0;
    }
    let pm: HashSet<usize> = primitive.iter().copied().collect();
    list.iter()
        .filter(|i| !pm.contains(i) && relevant.contains(i))
        .count() as f64
        / list.len() as f64
}

/// Catalogue coverage: share of the catalogue that appears in at least one list.
pub fn coverage<'a>(n_items: usize, lists: impl IntoIterator<Item = &'a Vec<usize>>) -> f64 {
    let all: HashSet<usize> = lists.into_iter().flatten().copied().collect();
    if n_items == 0 {
        0.0
    } else {
        all.len() as f64 / n_items as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn accuracy_by_hand() {
        // Target at position 2 (0-based): NDCG = 1/log2(4) = 0.5, MRR = 1/3.
        let a = accuracy(&[5, 7, 3, 9], &[3], 10);
        close(a.hit, 1.0);
        close(a.recall, 1.0);
        close(a.ndcg, 0.5);
        close(a.mrr, 1.0 / 3.0);
        // Cut-off before the target: nothing.
        assert_eq!(accuracy(&[5, 7, 3, 9], &[3], 2), Accuracy::default());
        // Two relevant, hits at 0 and 3, k = 10: DCG = 1 + 1/log2(5), IDCG = 1 + 1/log2(3).
        let a = accuracy(&[1, 2, 3, 4], &[1, 4], 10);
        close(
            a.ndcg,
            (1.0 + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2()),
        );
        close(a.recall, 1.0);
        close(a.mrr, 1.0);
        // Three relevant but k = 1: ideal DCG over min(3, 1) = 1 position → NDCG 1, recall 1/3.
        let a = accuracy(&[1, 2], &[1, 2, 3], 1);
        close(a.ndcg, 1.0);
        close(a.recall, 1.0 / 3.0);
    }

    #[test]
    fn top_k_excludes_and_breaks_ties_by_index() {
        let s = [0.5, 0.9, 0.9, 0.1, 0.7];
        let ex: HashSet<usize> = [4].into();
        assert_eq!(top_k(&s, 3, &ex), vec![1, 2, 0]);
        assert_eq!(top_k(&s, 10, &HashSet::new()), vec![1, 2, 4, 0, 3]);
    }

    #[test]
    fn mean_ci_by_hand() {
        let m = MeanCi::of(&[0.0, 1.0, 1.0, 0.0]);
        close(m.mean, 0.5);
        // s = sqrt(1/3), half-width = 1.96 · s / 2.
        close(m.hi - m.mean, 1.96 * (1.0f64 / 3.0).sqrt() / 2.0);
    }

    #[test]
    fn beyond_accuracy_by_hand() {
        let v = |i: usize| match i {
            0 => vec![1.0, 0.0],
            1 => vec![0.0, 1.0],
            _ => vec![1.0, 0.0],
        };
        // Pairs: (0,1) → 1, (0,2) → 0, (1,2) → 1: mean 2/3.
        close(intra_list_diversity(&[0, 1, 2], v), 2.0 / 3.0);
        let h1 = [0usize, 1];
        let h2 = [0usize, 0, 2];
        let p = Popularity::from_histories(4, [&h1[..], &h2[..]]);
        assert_eq!(p.users, vec![2, 1, 1, 0]);
        // Item 0: p = 1 → 0 bits; item 3: unplayed, p = 1/2 → 1 bit.
        close(p.novelty(&[0, 3]), 0.5);
        // 4 plays; 20% = 0.8 → the head is item 0 alone.
        assert_eq!(p.short_head(), [0].into());
        close(long_tail_share(&[0, 1, 2, 3], &p.short_head()), 0.75);
        close(serendipity(&[0, 1, 2], &[0], &[0, 2]), 1.0 / 3.0);
        close(coverage(4, &[vec![0, 1], vec![1, 2]]), 0.75);
    }
}
