//! A listener's taste as vectors in the embedding space: the mean of everything played
//! ("comprehensive" profile) and a few centroids ("multicategory" profile) for listeners
//! whose taste has several distinct modes — a mean of violin and choir sits in neither.

use serde::{Deserialize, Serialize};

use crate::cosine;

/// Running mean of the vectors seen. Stored as the mean (not a sum) so the document holds
/// values of the embedding's own scale, usable directly as a query vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanProfile {
    #[serde(with = "crate::packed")]
    pub mean: Vec<f32>,
    pub n: u64,
}

impl MeanProfile {
    /// Folds `v` in. Returns false (and changes nothing) when `v` has another dimension than
    /// the profile: after a model change the state is rebuilt by replaying the listen topic,
    /// so a stray old-model vector must not reset or corrupt the profile.
    pub fn add(&mut self, v: &[f32]) -> bool {
        if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
            return false;
        }
        if self.n == 0 {
            self.mean = v.to_vec();
            self.n = 1;
            return true;
        }
        if v.len() != self.mean.len() {
            return false;
        }
        self.n += 1;
        let w = 1.0 / self.n as f32;
        for (m, x) in self.mean.iter_mut().zip(v) {
            *m += (x - *m) * w;
        }
        true
    }

    /// The mean, once at least one vector was added.
    pub fn get(&self) -> Option<&[f32]> {
        (self.n > 0).then_some(self.mean.as_slice())
    }

    pub fn dims(&self) -> usize {
        if self.n > 0 { self.mean.len() } else { 0 }
    }
}

/// One mode of a listener's taste.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Centroid {
    #[serde(with = "crate::packed")]
    pub mean: Vec<f32>,
    /// Plays assigned to it (its weight).
    pub n: u64,
}

/// Online k-means (MacQueen's sequential update) over played vectors, k ≤ 4.
///
/// Deterministic: the same vectors in the same order give the same centroids. A vector
/// seeds a new centroid while fewer than k exist, unless it is nearly identical
/// (cosine ≥ [`Centroids::SAME`]) to one already there — so replaying a favourite does not
/// burn all k slots. Otherwise it joins the most similar centroid (ties: the oldest), whose
/// mean moves towards it by 1/n.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Centroids {
    pub k: usize,
    pub centroids: Vec<Centroid>,
}

impl Default for Centroids {
    fn default() -> Self {
        Centroids::new(Centroids::MAX_K)
    }
}

impl Centroids {
    /// Most centroids kept: more would split a small history into noise.
    pub const MAX_K: usize = 4;
    /// Cosine above which a new vector is "the same place" and never seeds a centroid.
    pub const SAME: f32 = 0.999;

    /// `k` is clamped to 1..=[`Self::MAX_K`].
    pub fn new(k: usize) -> Self {
        Centroids {
            k: k.clamp(1, Self::MAX_K),
            centroids: Vec::new(),
        }
    }

    /// Folds `v` in; false (unchanged) for an empty, non-finite or wrong-dimension vector.
    pub fn add(&mut self, v: &[f32]) -> bool {
        if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
            return false;
        }
        if self
            .centroids
            .first()
            .is_some_and(|c| c.mean.len() != v.len())
        {
            return false;
        }
        let mut best: Option<(usize, f32)> = None;
        for (i, c) in self.centroids.iter().enumerate() {
            let s = cosine(&c.mean, v);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        match best {
            Some((i, s)) if self.centroids.len() >= self.k || s >= Self::SAME => {
                let c = &mut self.centroids[i];
                c.n += 1;
                let w = 1.0 / c.n as f32;
                for (m, x) in c.mean.iter_mut().zip(v) {
                    *m += (x - *m) * w;
                }
            }
            _ => self.centroids.push(Centroid {
                mean: v.to_vec(),
                n: 1,
            }),
        }
        true
    }

    pub fn len(&self) -> usize {
        self.centroids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.centroids.is_empty()
    }

    /// Centroid means, heaviest first (ties: oldest first) — the order a ranker should
    /// query them in.
    pub fn by_weight(&self) -> Vec<&Centroid> {
        let mut v: Vec<&Centroid> = self.centroids.iter().collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.n));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_the_running_average_and_ignores_other_dimensions() {
        let mut p = MeanProfile::default();
        assert_eq!(p.get(), None);
        assert!(p.add(&[1.0, 0.0]));
        assert!(p.add(&[0.0, 1.0]));
        assert!(p.add(&[2.0, 2.0]));
        assert_eq!(p.get().unwrap(), &[1.0, 1.0]);
        assert!(!p.add(&[1.0, 2.0, 3.0]));
        assert!(!p.add(&[f32::NAN, 0.0]));
        assert_eq!((p.n, p.dims()), (3, 2));
    }

    #[test]
    fn centroids_find_two_tastes_and_keep_replays_in_one() {
        let mut c = Centroids::new(4);
        for _ in 0..5 {
            c.add(&[1.0, 0.0, 0.0]);
        }
        assert_eq!(c.len(), 1, "replays of one track must not use up slots");
        c.add(&[0.0, 1.0, 0.0]);
        c.add(&[0.0, 0.9, 0.1]);
        assert_eq!(c.len(), 3);
        let heaviest = c.by_weight()[0];
        assert_eq!(
            (heaviest.n, heaviest.mean.as_slice()),
            (5, &[1.0, 0.0, 0.0][..])
        );
        assert!(!c.add(&[1.0]));
    }

    #[test]
    fn centroids_are_bounded_and_deterministic() {
        let vs: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let a = i as f32 * 0.7;
                vec![a.sin(), a.cos(), (a * 0.3).sin()]
            })
            .collect();
        let run = || {
            let mut c = Centroids::new(9);
            vs.iter().for_each(|v| {
                c.add(v);
            });
            c
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert_eq!(a.k, Centroids::MAX_K);
        assert_eq!(a.len(), 4);
        assert_eq!(a.centroids.iter().map(|c| c.n).sum::<u64>(), 40);
    }
}
