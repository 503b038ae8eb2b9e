//! Methods without training: random, global popularity, KNN on the mean profile
//! ("comprehensive") and the multi-centroid profile ("multicategory").

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Counts, Ranker};
use crate::items::ItemTable;

/// Uniform random scores, seeded by the history so a user gets the same list twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandomRanker {
    pub n_items: usize,
    pub seed: u64,
}

impl Ranker for RandomRanker {
    fn name(&self) -> &str {
        "random"
    }

    fn score_all(&self, history: &[usize], _: &Counts) -> Vec<f32> {
        let h = history
            .iter()
            .fold(self.seed ^ 0x9e37_79b9_7f4a_7c15, |h, &i| {
                (h ^ i as u64).wrapping_mul(0x1000_0000_01b3)
            });
        let mut rng = ChaCha8Rng::seed_from_u64(h);
        (0..self.n_items).map(|_| rng.random::<f32>()).collect()
    }
}

/// Global popularity: plays per item in training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Popularity {
    pub plays: Vec<f32>,
}

impl Popularity {
    pub fn fit<'a>(n_items: usize, sequences: impl IntoIterator<Item = &'a Vec<usize>>) -> Self {
        let mut plays = vec![0.0; n_items];
        for s in sequences {
            for &i in s {
                plays[i] += 1.0;
            }
        }
        Popularity { plays }
    }
}

impl Ranker for Popularity {
    fn name(&self) -> &str {
        "popularity"
    }

    fn score_all(&self, _: &[usize], _: &Counts) -> Vec<f32> {
        self.plays.clone()
    }
}

/// Cosine between the mean of the history's (unit) vectors and every item.
#[derive(Debug, Clone)]
pub struct Knn {
    items: ItemTable,
}

impl Knn {
    pub fn new(items: &ItemTable) -> Self {
        Knn {
            items: items.normalized(),
        }
    }
}

impl Ranker for Knn {
    fn name(&self) -> &str {
        "knn"
    }

    fn score_all(&self, history: &[usize], _: &Counts) -> Vec<f32> {
        let q = self.items.mean_of(history);
        crate::items::dot_scan(&self.items.data, self.items.dim, &q)
    }
}

/// A profile of up to `k` centroids (k-means over the history's unit vectors); an item scores
/// its best cosine to any centroid, so a listener of two unrelated genres is not averaged
/// into neither.
#[derive(Debug, Clone)]
pub struct MultiCentroid {
    items: ItemTable,
    pub k: usize,
}

impl MultiCentroid {
    pub fn new(items: &ItemTable, k: usize) -> Self {
        MultiCentroid {
            items: items.normalized(),
            k: k.max(1),
        }
    }

    /// Centroids of the history (farthest-point initialisation, 10 Lloyd iterations).
    pub fn centroids(&self, history: &[usize]) -> Vec<Vec<f32>> {
        let mut distinct: Vec<usize> = history.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let k = self.k.min(distinct.len());
        if k == 0 {
            return Vec::new();
        }
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let rows: Vec<&[f32]> = history.iter().map(|&i| self.items.row(i)).collect();
        let mut cents: Vec<Vec<f32>> = vec![self.items.mean_of(history)];
        while cents.len() < k {
            let far = rows
                .iter()
                .min_by(|a, b| {
                    let sa = cents.iter().map(|c| dot(a, c)).fold(f32::MIN, f32::max);
                    let sb = cents.iter().map(|c| dot(b, c)).fold(f32::MIN, f32::max);
                    sa.total_cmp(&sb)
                })
                .map(|r| r.to_vec())
                .unwrap_or_default();
            cents.push(far);
        }
        for _ in 0..10 {
            let mut sums = vec![vec![0.0f32; self.items.dim]; k];
            let mut n = vec![0usize; k];
            for r in &rows {
                let best = (0..k)
                    .max_by(|&a, &b| dot(r, &cents[a]).total_cmp(&dot(r, &cents[b])))
                    .unwrap_or(0);
                sums[best]
                    .iter_mut()
                    .zip(r.iter())
                    .for_each(|(s, x)| *s += x);
                n[best] += 1;
            }
            for c in 0..k {
                if n[c] > 0 {
                    cents[c] = sums[c].iter().map(|s| s / n[c] as f32).collect();
                }
            }
        }
        cents
    }
}

impl Ranker for MultiCentroid {
    fn name(&self) -> &str {
        "multicentroid"
    }

    fn score_all(&self, history: &[usize], _: &Counts) -> Vec<f32> {
        let cents: Vec<Vec<f32>> = self
            .centroids(history)
            .into_iter()
            .map(|c| {
                let n = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                c.into_iter().map(|x| x / n).collect()
            })
            .collect();
        let mut best = vec![f32::MIN; self.items.len()];
        for c in &cents {
            for (b, s) in
                best.iter_mut()
                    .zip(crate::items::dot_scan(&self.items.data, self.items.dim, c))
            {
                *b = b.max(s);
            }
        }
        if cents.is_empty() {
            best.iter_mut().for_each(|b| *b = 0.0);
        }
        best
    }
}
