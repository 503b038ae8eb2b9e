use super::*;
use proptest::prelude::*;

const MIN: i64 = 60_000;

fn ev(i: usize, track: &str, ts: i64, skipped: bool) -> Listen {
    Listen {
        event_id: format!("e{i}"),
        user: UserId::new("u").unwrap(),
        track: TrackId::new(track).unwrap(),
        ts_ms: ts,
        play_fraction: if skipped { 0.1 } else { 1.0 },
        skipped,
    }
}

fn state() -> UserState {
    UserState::new(UserId::new("u").unwrap(), StateConfig::default())
}

fn at(offset: i64) -> Option<Position> {
    Some(Position {
        partition: 0,
        offset,
    })
}

#[test]
fn counts_plays_skips_sessions_and_profile() {
    let mut s = state();
    s.apply_at(&ev(0, "a", MIN, false), at(0), Some(&[1.0, 0.0]));
    s.apply_at(&ev(1, "b", 2 * MIN, true), at(1), Some(&[0.0, 1.0]));
    s.apply_at(&ev(2, "a", 90 * MIN, false), at(2), Some(&[1.0, 0.0]));
    assert_eq!((s.listen_count, s.skip_count, s.session_count), (3, 1, 2));
    assert_eq!(s.play_counts["a"], 2);
    assert_eq!(s.skip_counts["b"], 1);
    assert!(!s.play_counts.contains_key("b"), "a skip is not a play");
    assert_eq!(
        s.profile.get().unwrap(),
        &[1.0, 0.0],
        "skips do not feed the profile"
    );
    assert_eq!(s.centroids.len(), 1);
    assert_eq!(s.heard().len(), 2);
    assert_eq!(s.played_sequence().count(), 2);
    assert_eq!(s.recent_tracks().count(), 3);
    assert_eq!((s.last_ts_ms, s.last_event_id.as_str()), (90 * MIN, "e2"));
}

#[test]
fn redelivery_and_retries_change_nothing() {
    let mut s = state();
    s.apply_at(&ev(0, "a", MIN, false), at(0), None);
    s.apply_at(&ev(1, "b", 2 * MIN, false), at(1), None);
    let before = s.clone();
    // Kafka redelivers offset 1 after a crash before the commit.
    assert_eq!(
        s.apply_at(&ev(1, "b", 2 * MIN, false), at(1), None),
        Applied::Duplicate
    );
    assert_eq!(s, before);
    // A producer retry: same event id at a new offset.
    assert_eq!(
        s.apply_at(&ev(0, "a", MIN, false), at(7), None),
        Applied::Duplicate
    );
    assert_eq!(s.listen_count, 2);
    assert_eq!(
        s.watermarks[&0], 7,
        "the watermark still moves past the copy"
    );
    // Without positions, event ids alone de-duplicate.
    assert_eq!(
        s.apply(&ev(1, "b", 2 * MIN, false), None),
        Applied::Duplicate
    );
    assert_eq!(s.apply(&ev(2, "c", 3 * MIN, false), None), Applied::Applied);
}

#[test]
fn late_events_land_in_time_order_and_fix_sessions() {
    let gap = StateConfig::default().session_gap_ms as i64;
    let mut s = state();
    s.apply(&ev(0, "a", 1, false), None);
    s.apply(&ev(1, "b", 1 + 2 * gap, false), None);
    assert_eq!(s.session_count, 2);
    // Late, at 1.25 gaps: more than a gap after the first, within one of the second →
    // it joins the second session.
    s.apply(&ev(2, "c", 1 + gap + gap / 4, false), None);
    assert_eq!(s.session_count, 2);
    let order: Vec<&str> = s.recent_tracks().map(TrackId::as_str).collect();
    assert_eq!(order, ["a", "c", "b"]);
    // A late event within the gap of both neighbours bridges them into one session.
    s.apply(&ev(3, "d", 1 + gap / 2 + gap / 4, false), None);
    assert_eq!(s.session_count, 1);
    // A late event far before everything is its own session.
    let mut s2 = state();
    s2.apply(&ev(0, "a", 10 * gap, false), None);
    s2.apply(&ev(1, "b", gap, false), None);
    assert_eq!(s2.session_count, 2);
}

#[test]
fn recent_is_bounded_and_a_too_late_event_is_counted_but_not_kept() {
    let cfg = StateConfig {
        max_recent: 3,
        dedupe_window: 2,
        ..StateConfig::default()
    };
    let mut s = UserState::new(UserId::new("u").unwrap(), cfg);
    for i in 0..5 {
        s.apply(&ev(i, "a", 1000 + i as i64, false), None);
    }
    assert_eq!(s.recent.len(), 3);
    assert_eq!(s.applied_ids.len(), 2);
    assert_eq!(s.recent[0].ts_ms, 1002);
    s.apply(&ev(9, "z", 5, false), None);
    assert_eq!(s.listen_count, 6);
    assert_eq!(s.play_counts["z"], 1);
    assert_eq!(
        s.recent[0].ts_ms, 1002,
        "older than the window: not inserted"
    );
    s.reconfigure(StateConfig {
        max_recent: 1,
        ..cfg
    });
    assert_eq!(s.recent.len(), 1);
}

#[test]
fn wrong_dimension_vectors_are_ignored_and_counted() {
    let mut s = state();
    s.apply(&ev(0, "a", 1, false), Some(&[1.0, 0.0]));
    s.apply(&ev(1, "b", 2, false), Some(&[1.0, 0.0, 0.0]));
    assert_eq!((s.profile.n, s.ignored_vectors), (1, 1));
}

#[test]
fn serde_round_trip_keeps_everything_including_watermarks() {
    let mut s = state();
    s.apply_at(
        &ev(0, "a", 1, false),
        Some(Position {
            partition: 3,
            offset: 9,
        }),
        Some(&[0.5, 0.5]),
    );
    let json = serde_json::to_string(&s).unwrap();
    let back: UserState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    // A minimal document (older writer) still loads with defaults.
    let min: UserState = serde_json::from_str(r#"{"user":"u"}"#).unwrap();
    assert_eq!(min.config, StateConfig::default());
    assert!(serde_json::from_str::<UserState>(r#"{"user":"bad id"}"#).is_err());
}

/// Events with colliding timestamps, repeated tracks and skips.
fn stream() -> impl Strategy<Value = Vec<Listen>> {
    proptest::collection::vec((0usize..5, 0i64..30, proptest::bool::weighted(0.2)), 1..80).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (t, ts, skip))| {
                    ev(i, ["a", "b", "c", "d", "e"][t], 1 + ts * 7 * MIN, skip)
                })
                .collect()
        },
    )
}

fn vec_of(l: &Listen) -> Vec<f32> {
    let t = l.track.as_str().as_bytes()[0] as f32;
    vec![t.sin(), t.cos(), 1.0]
}

fn counts(s: &UserState) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        s.listen_count,
        s.skip_count,
        s.play_counts.clone(),
        s.skip_counts.clone(),
        s.session_count,
        s.recent.clone(),
        s.last_ts_ms,
        s.profile.n,
    )
}

proptest! {
    /// Shuffled, with duplicates (retries) mixed in, gives the counts of the clean stream
    /// applied in time order; the sessions match `sessionise` over the same listens.
    #[test]
    fn shuffled_with_duplicates_equals_deduplicated(
        events in stream(),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        seed in any::<u64>(),
    ) {
        let mut clean = events.clone();
        clean.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let mut reference = state();
        for l in &clean {
            prop_assert_eq!(reference.apply(l, Some(&vec_of(l))), Applied::Applied);
        }
        let mut noisy: Vec<Listen> = events.clone();
        noisy.extend(dups.iter().map(|i| events[i.index(events.len())].clone()));
        let mut x = seed | 1;
        for i in (1..noisy.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            noisy.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut s = state();
        let applied = noisy.iter().filter(|l| s.apply(l, Some(&vec_of(l))) == Applied::Applied).count();
        prop_assert_eq!(applied, events.len());
        prop_assert_eq!(counts(&s), counts(&reference));
        let sessions = crate::sessionise(&events, reference.config.session_gap());
        prop_assert_eq!(s.session_count, sessions.len() as u64);
        for (a, b) in s.profile.mean.iter().zip(&reference.profile.mean) {
            prop_assert!((a - b).abs() < 1e-4);
        }
    }

    /// At-least-once delivery (crashes redeliver from an earlier offset) gives exactly the
    /// state of exactly-once delivery — every field, profiles included.
    #[test]
    fn redelivery_from_earlier_offsets_is_idempotent(
        events in stream(),
        crashes in proptest::collection::vec((0usize..80, 0usize..10), 0..10),
    ) {
        let mut once = state();
        for (i, l) in events.iter().enumerate() {
            once.apply_at(l, at(i as i64), Some(&vec_of(l)));
        }
        let mut twice = state();
        let mut delivered = 0usize;
        for (upto, back) in crashes {
            let upto = upto % events.len();
            for (i, l) in events.iter().enumerate().take(upto + 1).skip(delivered.saturating_sub(back)) {
                twice.apply_at(l, at(i as i64), Some(&vec_of(l)));
            }
            delivered = delivered.max(upto + 1);
        }
        for (i, l) in events.iter().enumerate().skip(delivered.saturating_sub(3)) {
            twice.apply_at(l, at(i as i64), Some(&vec_of(l)));
        }
        prop_assert_eq!(once, twice);
    }
}
