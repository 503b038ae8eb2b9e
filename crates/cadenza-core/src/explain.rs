//! Explanations: why a track is in a list, in words a listener accepts — the nearest track
//! of their history and the model tags the two share.

use crate::{TrackId, cosine};

/// What the explanation needs to know about a history track: a name and its tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackLabel {
    /// Title (or any display name); empty = fall back to the id.
    pub title: String,
    /// Predicted tags, best first.
    pub tags: Vec<String>,
}

/// Why a track was recommended.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The history track closest to the candidate; `None` without history vectors.
    pub nearest: Option<TrackId>,
    /// Cosine similarity to `nearest` (0 without one).
    pub similarity: f32,
    /// Tags of the candidate also predicted for `nearest`, in the candidate's order.
    pub shared_tags: Vec<String>,
    /// One sentence, e.g. "because you listened to Chaconne: similar timbre (0.93),
    /// shared tags: violin, classical".
    pub text: String,
}

/// At most this many shared tags are named: more reads as noise.
const MAX_SHARED_TAGS: usize = 3;

/// A listening history prepared for explaining many candidates: each vector is scaled to
/// unit length once, so finding a candidate's nearest track costs one dot product per
/// history track instead of a full cosine (three sums) per pair.
#[derive(Debug, Clone)]
pub struct History<'a> {
    /// (id, vector as given, unit vector; empty when the vector is empty or all zeros).
    tracks: Vec<(&'a TrackId, &'a [f32], Vec<f32>)>,
}

impl<'a> History<'a> {
    /// The history, in the order ties should be decided (earlier entries win).
    pub fn new(tracks: impl IntoIterator<Item = (&'a TrackId, &'a [f32])>) -> Self {
        History {
            tracks: tracks.into_iter().map(|(id, v)| (id, v, unit(v))).collect(),
        }
    }

    /// The history track most similar to `candidate` and its cosine similarity (computed in
    /// full for that track), or `None` when no history track has a vector. The similarity is
    /// 0 for vectors of another dimension or all zeros, as with [`cosine`].
    pub fn nearest(&self, candidate: &[f32]) -> Option<(&'a TrackId, f32)> {
        let c = unit(candidate);
        let mut best: Option<(usize, f32)> = None;
        for (i, (_, v, u)) in self.tracks.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            let s = if u.len() == c.len() && !c.is_empty() {
                dot(&c, u)
            } else {
                0.0
            };
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        let (i, _) = best?;
        let (id, v, _) = &self.tracks[i];
        Some((id, cosine(candidate, v)))
    }
}

/// `v` scaled to unit length (norm accumulated in f64); empty for an empty or zero vector.
fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Vec::new();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

/// Dot product of two equal-length vectors, in eight independent f32 lanes (vectorised).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xs, ys) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += xs[l] * ys[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Explains a candidate by its nearest history track. `history` pairs track ids with their
/// vectors; on equal similarity the earlier entry wins, so pass the most recent first if
/// recency should decide. `candidate_tags` are the candidate's predicted tags (best first);
/// `label` names a history track and gives its tags (`None` = unknown: the id is shown).
/// To explain many candidates against one history, prepare it once with [`History`] and
/// call [`explain_with`].
pub fn explain(
    candidate_vec: &[f32],
    history: &[(TrackId, Vec<f32>)],
    candidate_tags: &[String],
    label: impl Fn(&TrackId) -> Option<TrackLabel>,
) -> Explanation {
    let history = History::new(history.iter().map(|(id, v)| (id, v.as_slice())));
    explain_with(candidate_vec, &history, candidate_tags, label)
}

/// [`explain`] against a prepared history.
pub fn explain_with(
    candidate_vec: &[f32],
    history: &History<'_>,
    candidate_tags: &[String],
    label: impl Fn(&TrackId) -> Option<TrackLabel>,
) -> Explanation {
    let Some((id, similarity)) = history.nearest(candidate_vec) else {
        return Explanation {
            nearest: None,
            similarity: 0.0,
            shared_tags: Vec::new(),
            text: "chosen from the audio alone: no listening history with sound to compare yet"
                .to_owned(),
        };
    };
    let label = label(id).unwrap_or_default();
    let shared_tags: Vec<String> = candidate_tags
        .iter()
        .filter(|t| label.tags.contains(t))
        .take(MAX_SHARED_TAGS)
        .cloned()
        .collect();
    let name = if label.title.is_empty() {
        id.as_str()
    } else {
        label.title.as_str()
    };
    let mut text = format!("because you listened to {name}: similar timbre ({similarity:.2})");
    if !shared_tags.is_empty() {
        text.push_str(", shared tags: ");
        text.push_str(&shared_tags.join(", "));
    }
    Explanation {
        nearest: Some(id.clone()),
        similarity,
        shared_tags,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(s: &str) -> TrackId {
        TrackId::new(s).unwrap()
    }

    fn tags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_the_nearest_history_track_and_shared_tags() {
        let history = vec![
            (tid("choir"), vec![0.0, 1.0]),
            (tid("chaconne"), vec![1.0, 0.1]),
        ];
        let e = explain(
            &[1.0, 0.0],
            &history,
            &tags(&["violin", "strings", "classical", "solo"]),
            |id| {
                (id.as_str() == "chaconne").then(|| TrackLabel {
                    title: "Chaconne".into(),
                    tags: tags(&["classical", "violin", "solo", "strings"]),
                })
            },
        );
        assert_eq!(e.nearest, Some(tid("chaconne")));
        assert!((e.similarity - 0.995).abs() < 1e-3);
        assert_eq!(e.shared_tags, ["violin", "strings", "classical"]);
        assert_eq!(
            e.text,
            "because you listened to Chaconne: similar timbre (1.00), shared tags: violin, strings, classical"
        );
    }

    #[test]
    fn falls_back_to_the_id_and_omits_empty_tag_lists() {
        let history = vec![(tid("t1"), vec![1.0, 0.0])];
        let e = explain(&[1.0, 1.0], &history, &tags(&["piano"]), |_| None);
        assert_eq!(e.text, "because you listened to t1: similar timbre (0.71)");
        assert!(e.shared_tags.is_empty());
    }

    #[test]
    fn without_history_says_so() {
        let e = explain(&[1.0], &[(tid("x"), vec![])], &[], |_| None);
        assert_eq!(e.nearest, None);
        assert!(e.text.contains("no listening history"));
    }

    #[test]
    fn earlier_history_entries_win_ties() {
        let history = vec![
            (tid("recent"), vec![1.0, 0.0]),
            (tid("old"), vec![2.0, 0.0]),
        ];
        assert_eq!(
            explain(&[1.0, 0.0], &history, &[], |_| None).nearest,
            Some(tid("recent"))
        );
    }

    /// The prepared history names the same nearest track as a full cosine against every
    /// history track, and reports that cosine, over many random histories.
    #[test]
    fn prepared_nearest_agrees_with_full_cosines() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for round in 0..200 {
            let dim = 1 + round % 37;
            let ids: Vec<TrackId> = (0..12).map(|i| tid(&format!("h{i}"))).collect();
            let vectors: Vec<Vec<f32>> = (0..12)
                .map(|i| match (round + i) % 11 {
                    0 => Vec::new(),
                    1 => vec![0.0; dim],
                    _ => (0..dim).map(|_| next()).collect(),
                })
                .collect();
            let candidate: Vec<f32> = (0..dim).map(|_| next()).collect();
            let history = History::new(ids.iter().zip(&vectors).map(|(i, v)| (i, v.as_slice())));
            let got = history.nearest(&candidate).unwrap();
            let mut want: Option<(&TrackId, f32)> = None;
            for (id, v) in ids.iter().zip(&vectors) {
                if v.is_empty() {
                    continue;
                }
                let s = cosine(&candidate, v);
                if want.is_none_or(|(_, b)| s > b) {
                    want = Some((id, s));
                }
            }
            let want = want.unwrap();
            // The same track, or one whose cosine ties with it within float error (either may
            // be picked then): the similarity reported is the nearest's either way.
            assert!(
                (got.1 - want.1).abs() < 1e-5,
                "round {round}: {got:?} vs {want:?}"
            );
        }
    }
}
