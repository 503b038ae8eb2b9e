use super::*;
use proptest::prelude::*;

fn c(id: &str, v: &[f32], score: f32) -> Candidate {
    Candidate {
        id: TrackId::new(id).unwrap(),
        vector: v.to_vec(),
        score,
    }
}

fn ids(v: &[Candidate]) -> Vec<&str> {
    v.iter().map(|c| c.id.as_str()).collect()
}

#[test]
fn cosine_basics_and_degenerate_inputs() {
    assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
    assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
    assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
    assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    assert_eq!(cosine(&[], &[]), 0.0);
    assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
}

#[test]
fn knn_merges_lists_rescoring_by_the_nearest_profile() {
    let violin = [1.0, 0.0];
    let choir = [0.0, 1.0];
    let lists = vec![
        vec![c("v1", &[0.9, 0.1], 0.5), c("mid", &[0.7, 0.7], 0.9)],
        vec![c("c1", &[0.05, 1.0], 0.4), c("v1", &[0.9, 0.1], 0.1)],
    ];
    let out = knn_candidates(&[&violin, &choir], lists.clone());
    assert_eq!(ids(&out), ["c1", "v1", "mid"]);
    // Without profiles the index scores rule, and duplicates keep their best score.
    let out = knn_candidates(&[], lists);
    assert_eq!(ids(&out), ["mid", "v1", "c1"]);
    assert_eq!(out[1].score, 0.5);
}

#[test]
fn heard_tracks_are_left_out_unless_repeats_are_wanted() {
    let heard: BTreeSet<TrackId> = [TrackId::new("a").unwrap()].into();
    let cands = vec![c("a", &[], 1.0), c("b", &[], 0.5)];
    assert_eq!(ids(&exclude_heard(cands.clone(), &heard, false)), ["b"]);
    assert_eq!(ids(&exclude_heard(cands, &heard, true)), ["a", "b"]);
}

#[test]
fn mmr_trades_relevance_for_diversity() {
    let cands = vec![
        c("a", &[1.0, 0.0], 1.0),
        c("a2", &[1.0, 0.01], 0.99),
        c("b", &[0.0, 1.0], 0.9),
    ];
    assert_eq!(ids(&mmr(&cands, 0.0, 3)), ["a", "a2", "b"]);
    assert_eq!(ids(&mmr(&cands, 0.5, 2)), ["a", "b"]);
    assert_eq!(ids(&mmr(&cands, f32::NAN, 1)), ["a"]);
    assert!(mmr(&cands, 0.5, 0).is_empty());
    assert!(mmr(&[], 0.5, 3).is_empty());
}

#[test]
fn personal_popularity_matches_the_formula() {
    assert_eq!(personal_popularity(5, 5), 0.0);
    let unplayed = personal_popularity(0, 9);
    assert!((unplayed - (0.01f32.ln() - 9.01f32.ln())).abs() < 1e-6);
    assert!(personal_popularity(1, 9) > unplayed);
    assert_eq!(
        personal_popularity(0, 0),
        0.0,
        "no plays at all: no preference"
    );
    assert_eq!(
        personal_popularity(7, 3),
        0.0,
        "a stale max never makes a term positive"
    );
}

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    proptest::collection::vec(
        (
            0usize..12,
            proptest::collection::vec(-1.0f32..1.0, 3),
            -5.0f32..5.0,
        ),
        0..30,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(i, vec, s)| c(&format!("t{i}"), &vec, s))
            .collect()
    })
}

proptest! {
    #[test]
    fn mmr_never_duplicates_and_respects_k(cands in candidates(), lambda in 0.0f32..=1.0, k in 0usize..15) {
        let out = mmr(&cands, lambda, k);
        let distinct: BTreeSet<&TrackId> = cands.iter().map(|c| &c.id).collect();
        prop_assert!(out.len() <= k);
        prop_assert_eq!(out.len(), k.min(distinct.len()));
        let unique: BTreeSet<&TrackId> = out.iter().map(|c| &c.id).collect();
        prop_assert_eq!(unique.len(), out.len());
    }

    #[test]
    fn mmr_at_lambda_zero_is_relevance_order(cands in candidates(), k in 0usize..15) {
        let out = mmr(&cands, 0.0, k);
        let mut expected = knn_candidates(&[], [cands.clone()]);
        expected.truncate(k);
        prop_assert_eq!(&out, &expected);
        for w in out.windows(2) {
            prop_assert!(w[0].score >= w[1].score);
        }
    }

    #[test]
    fn knn_output_is_unique_and_sorted(cands in candidates(), p in proptest::collection::vec(-1.0f32..1.0, 3)) {
        let out = knn_candidates(&[&p], [cands.clone()]);
        let unique: BTreeSet<&TrackId> = out.iter().map(|c| &c.id).collect();
        prop_assert_eq!(unique.len(), out.len());
        for w in out.windows(2) {
            prop_assert!(w[0].score >= w[1].score);
        }
    }
}
