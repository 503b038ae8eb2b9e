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

/// Explains a candidate by its nearest history track. `history` pairs track ids with their
/// vectors; on equal similarity the earlier entry wins, so pass the most recent first if
/// recency should decide. `candidate_tags` are the candidate's predicted tags (best first);
/// `label` names a history track and gives its tags (`None` = unknown: the id is shown).
pub fn explain(
    candidate_vec: &[f32],
    history: &[(TrackId, Vec<f32>)],
    candidate_tags: &[String],
    label: impl Fn(&TrackId) -> Option<TrackLabel>,
) -> Explanation {
    let mut nearest: Option<(&TrackId, f32)> = None;
    for (id, v) in history {
        if v.is_empty() {
            continue;
        }
        let s = cosine(candidate_vec, v);
        if nearest.is_none_or(|(_, b)| s > b) {
            nearest = Some((id, s));
        }
    }
    let Some((id, similarity)) = nearest else {
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
}
