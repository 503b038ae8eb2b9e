//! The domain pieces composed the way the services compose them: validated listens fold
//! into a user state, whose profile ranks candidates, which are diversified and explained.

use std::collections::BTreeMap;

use cadenza_core::{
    Candidate, Listen, StateConfig, TrackId, TrackLabel, UserId, UserState, exclude_heard, explain,
    knn_candidates, mmr, personal_popularity, sessionise,
};

const NOW: i64 = 1_750_000_000_000;

#[test]
fn a_violin_listener_gets_violin_tracks_with_reasons() {
    // A tiny catalogue in a 2-d "timbre" space: x = strings, y = voices.
    let catalogue: BTreeMap<&str, (Vec<f32>, Vec<String>)> = [
        (
            "partita",
            (vec![1.0, 0.05], vec!["violin".into(), "classical".into()]),
        ),
        (
            "sonata",
            (vec![0.95, 0.1], vec!["violin".into(), "strings".into()]),
        ),
        (
            "quartet",
            (vec![0.9, 0.2], vec!["strings".into(), "classical".into()]),
        ),
        (
            "motet",
            (vec![0.05, 1.0], vec!["choir".into(), "voice".into()]),
        ),
    ]
    .into();
    let user = UserId::new("alice").unwrap();
    let mut state = UserState::new(user.clone(), StateConfig::default());
    let raw = [
        ("e1", "partita", NOW - 3_000_000),
        ("e2", "partita", NOW - 2_000_000),
        ("e3", "sonata", NOW - 100),
    ];
    let mut listens = Vec::new();
    for (id, track, ts) in raw {
        let l = Listen::new(id, user.as_str(), track, ts, 1.0, false, NOW).unwrap();
        state.apply(&l, Some(&catalogue[track].0));
        listens.push(l);
    }
    // A bad event is rejected at the edge with a message, never applied.
    assert!(Listen::new("e4", "alice", "motet", NOW, 1.5, false, NOW).is_err());
    assert_eq!(
        sessionise(&listens, state.config.session_gap()).len() as u64,
        state.session_count
    );

    let profile = state.profile.get().unwrap().to_vec();
    let candidates: Vec<Candidate> = catalogue
        .iter()
        .map(|(id, (v, _))| Candidate {
            id: TrackId::new(*id).unwrap(),
            vector: v.clone(),
            score: 0.0,
        })
        .collect();
    let ranked = knn_candidates(&[&profile], [candidates]);
    let fresh = exclude_heard(ranked, &state.heard(), false);
    let top = mmr(&fresh, 0.0, 2);
    let top_ids: Vec<&str> = top.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        top_ids,
        ["quartet", "motet"],
        "heard tracks left out, strings first"
    );

    let history: Vec<(TrackId, Vec<f32>)> = state
        .played_sequence()
        .map(|t| (t.clone(), catalogue[t.as_str()].0.clone()))
        .collect();
    let e = explain(&top[0].vector, &history, &catalogue["quartet"].1, |t| {
        Some(TrackLabel {
            title: t.as_str().to_uppercase(),
            tags: catalogue[t.as_str()].1.clone(),
        })
    });
    assert_eq!(e.nearest.as_ref().map(TrackId::as_str), Some("sonata"));
    assert!(
        e.text
            .starts_with("because you listened to SONATA: similar timbre (0.99)"),
        "{}",
        e.text
    );
    assert_eq!(e.shared_tags, ["strings"]);

    // Repeat listening: the favourite gets the largest popularity term.
    let max = *state.play_counts.values().max().unwrap();
    assert_eq!(personal_popularity(state.play_counts["partita"], max), 0.0);
    assert!(personal_popularity(state.play_counts["sonata"], max) < 0.0);
}
