//! From listen events to train / validation / test: per-user temporal leave-last-out, a global
//! temporal split, user folds for cross-validation and work-level folds for the probes.
//!
//! Invariant (tested): a test target never appears in its user's input unless the split is
//! repeat-aware, where re-listens are the point.

use std::collections::{BTreeMap, HashSet};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::listeners::ListenEvent;

/// Plays with less than this share played count as skips, not as interactions.
pub const MIN_PLAY_FRACTION: f32 = 0.5;

/// One user's positive interactions in time order (item indices into the catalogue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSeq {
    pub user_id: String,
    pub items: Vec<usize>,
    pub ts_ms: Vec<i64>,
}

/// Group events into per-user sequences, dropping skips and unknown tracks; users in id order.
pub fn sequences(events: &[ListenEvent], catalogue: &Catalogue) -> Vec<UserSeq> {
    let mut by_user: BTreeMap<&str, Vec<(i64, u64, usize)>> = BTreeMap::new();
    for e in events {
        if e.skipped || e.play_fraction < MIN_PLAY_FRACTION {
            continue;
        }
        if let Some(i) = catalogue.index_of(&e.track_id) {
            by_user
                .entry(&e.user_id)
                .or_default()
                .push((e.ts_ms, e.event_id, i));
        }
    }
    by_user
        .into_iter()
        .map(|(u, mut v)| {
            v.sort_unstable();
            UserSeq {
                user_id: u.to_owned(),
                items: v.iter().map(|x| x.2).collect(),
                ts_ms: v.iter().map(|x| x.0).collect(),
            }
        })
        .collect()
}

/// Whether re-listens can be targets (and seen items stay rankable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// Targets are first listens; seen items are excluded from the ranking.
    Novel,
    /// Targets are the literal last plays, repeats included; nothing is excluded.
    RepeatAware,
}

/// One user's split: `train` is what models fit on; validation input is `train`, test input is
/// `train + [valid]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSplit {
    pub user_id: String,
    pub train: Vec<usize>,
    pub valid: usize,
    pub test: usize,
}

impl UserSplit {
    /// The history a ranker sees when predicting the test target.
    pub fn test_input(&self) -> Vec<usize> {
        let mut v = self.train.clone();
        v.push(self.valid);
        v
    }
}

/// Position of the last item of `items[..end]` that did not occur before it.
fn last_novel(items: &[usize], end: usize) -> Option<usize> {
    (0..end).rev().find(|&i| !items[..i].contains(&items[i]))
}

/// Per-user temporal leave-last-out. `Novel`: test = last first-listen, validation = the
/// first-listen before it, later plays are dropped. `RepeatAware`: test = last play, validation
/// = the one before. Users with too few plays (fewer than `min_train` training items) are left out.
pub fn leave_last_out(seqs: &[UserSeq], mode: SplitMode, min_train: usize) -> Vec<UserSplit> {
    seqs.iter()
        .filter_map(|s| {
            let items = &s.items;
            let (t, v) = match mode {
                SplitMode::Novel => {
                    let t = last_novel(items, items.len())?;
                    (t, last_novel(items, t)?)
                }
                SplitMode::RepeatAware => {
                    let n = items.len();
                    if n < 2 {
                        return None;
                    }
                    (n - 1, n - 2)
                }
            };
            let train = items[..v].to_vec();
            (train.len() >= min_train.max(1)).then(|| UserSplit {
                user_id: s.user_id.clone(),
                train,
                valid: items[v],
                test: items[t],
            })
        })
        .collect()
}

/// Global temporal split: a cut time leaves `train_share` of all plays before it. Each user with
/// a first-listen after the cut is a test user: input = plays before the cut, target = first
/// first-listen after it. Returns the cut and the per-user (input, target) pairs.
pub fn global_temporal(
    seqs: &[UserSeq],
    train_share: f64,
) -> (i64, Vec<(String, Vec<usize>, usize)>) {
    let mut all: Vec<i64> = seqs.iter().flat_map(|s| s.ts_ms.iter().copied()).collect();
    all.sort_unstable();
    if all.is_empty() {
        return (0, Vec::new());
    }
    let k = ((all.len() as f64 * train_share) as usize).min(all.len() - 1);
    let cut = all[k];
    let pairs = seqs
        .iter()
        .filter_map(|s| {
            let n_before = s.ts_ms.partition_point(|&t| t < cut);
            if n_before == 0 {
                return None;
            }
            let input = s.items[..n_before].to_vec();
            let seen: HashSet<usize> = input.iter().copied().collect();
            let target = s.items[n_before..].iter().find(|i| !seen.contains(i))?;
            Some((s.user_id.clone(), input, *target))
        })
        .collect();
    (cut, pairs)
}

/// Assign each of `n` elements to one of `k` folds, shuffled with `seed` (sizes differ by ≤ 1).
pub fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0; n];
    for (rank, &i) in order.iter().enumerate() {
        fold[i] = rank % k.max(1);
    }
    fold
}

/// Work-level folds: every track of one work lands in the same fold, so a probe never trains
/// on one movement (or excerpt) of a work and is tested on another.
pub fn work_folds(catalogue: &Catalogue, k: usize, seed: u64) -> Vec<usize> {
    let works = catalogue.work_ids();
    let n_works = works.iter().max().map_or(0, |m| m + 1);
    let wf = folds(n_works, k, seed);
    works.iter().map(|&w| wf[w]).collect()
}

/// A seeded subsample holding `fraction` of `items` (at least one when `items` is non-empty).
pub fn subsample<T: Clone>(items: &[T], fraction: f64, seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let k =
        ((items.len() as f64 * fraction).round() as usize).clamp(items.len().min(1), items.len());
    v.truncate(k);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(items: &[usize]) -> UserSeq {
        UserSeq {
            user_id: "u".into(),
            items: items.to_vec(),
            ts_ms: (0..items.len() as i64).collect(),
        }
    }

    #[test]
    fn novel_split_skips_trailing_repeats() {
        let s = leave_last_out(&[seq(&[1, 2, 3, 4, 2, 5, 1, 3])], SplitMode::Novel, 1);
        assert_eq!(s[0].test, 5);
        assert_eq!(s[0].valid, 4);
        assert_eq!(s[0].train, vec![1, 2, 3]);
    }

    #[test]
    fn repeat_aware_split_keeps_repeats() {
        let s = leave_last_out(&[seq(&[1, 2, 3, 1])], SplitMode::RepeatAware, 1);
        assert_eq!((s[0].valid, s[0].test), (3, 1));
        assert_eq!(s[0].train, vec![1, 2]);
    }

    #[test]
    fn work_folds_keep_works_together() {
        let mut tracks = Vec::new();
        for i in 0..30 {
            tracks.push(crate::catalogue::Track {
                track_id: format!("t{i}"),
                work_id: format!("w{}", i / 3),
                ..Default::default()
            });
        }
        let c = Catalogue::new(Default::default(), tracks);
        let f = work_folds(&c, 5, 1);
        for i in 0..30 {
            assert_eq!(f[i], f[i / 3 * 3]);
        }
        assert!((0..5).all(|k| f.contains(&k)));
    }

    #[test]
    fn global_split_targets_are_unseen() {
        let (_, pairs) = global_temporal(&[seq(&[1, 2, 3, 1, 4, 5])], 0.5);
        assert_eq!(pairs[0].1, vec![1, 2, 3]);
        assert_eq!(pairs[0].2, 4);
    }

    proptest::proptest! {
        #[test]
        fn novel_targets_never_in_input(items in proptest::collection::vec(0usize..20, 0..60)) {
            for s in leave_last_out(&[seq(&items)], SplitMode::Novel, 1) {
                proptest::prop_assert!(!s.test_input().contains(&s.test));
                proptest::prop_assert!(!s.train.contains(&s.valid));
            }
        }
    }
}
