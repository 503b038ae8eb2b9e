//! The aggregation over the real on-disk bus and the in-memory reference index: bad events go
//! to the dead-letter topic and the rest are applied, redeliveries count once, and a replay
//! into an empty index rebuilds every state exactly.

use std::time::Duration;

use cadenza_bus::{DEAD_LETTER_TOPIC, HEADER_REASON, LogBus, StartFrom, SubscribeOpts};
use cadenza_index::MemoryIndex;
use cadenza_svc::catalog::{tracks_spec, users_spec};

use super::*;

const DIM: usize = 4;

async fn index_with_tracks() -> Arc<dyn VectorIndex> {
    let index: Arc<dyn VectorIndex> = Arc::new(MemoryIndex::new());
    index.ensure_collection(&tracks_spec(DIM)).await.unwrap();
    index.ensure_collection(&users_spec(DIM)).await.unwrap();
    let points = (0..4)
        .map(|i| {
            let mut v = vec![0.1; DIM];
            v[i] = 1.0;
            let mut p = serde_json::Map::new();
            p.insert("track_id".into(), json!(format!("t{i}")));
            Point::new(point_id(&format!("t{i}")), v).with_payload(p)
        })
        .collect();
    index.upsert(TRACKS, points).await.unwrap();
    index
}

fn listen(event: &str, user: &str, track: &str, ts_ms: i64, fraction: f32) -> Vec<u8> {
    ListenRecorded {
        event_id: event.into(),
        user_id: user.into(),
        track_id: track.into(),
        timestamp_ms: ts_ms,
        play_fraction: fraction,
        skipped: fraction < 0.3,
        session_hint: String::new(),
    }
    .encode_to_vec()
}

async fn stored(index: &dyn VectorIndex, user: &str) -> Option<UserState> {
    let p = index
        .get(USERS, &[point_id(user)], false)
        .await
        .unwrap()
        .into_iter()
        .next()?;
    Some(state_of(&p.payload).unwrap())
}

/// Runs `agg` until `done` holds (or 20 s pass), then shuts it down.
async fn run_until<F, Fut>(agg: Aggregator, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let shutdown = Shutdown::new();
    let task = tokio::spawn(agg.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "aggregation did not finish in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_events_are_dead_lettered_and_the_rest_applied_replay_rebuilds_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(dir.path()).await.unwrap());
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
        .await
        .unwrap();
    let t0 = 1_700_000_000_000;
    let minute = 60_000;
    let good = [
        listen("e1", "ana", "t0", t0, 1.0),
        listen("e2", "ana", "t1", t0 + minute, 0.9),
        listen("e3", "ben", "t2", t0, 1.0),
        listen("e4", "ana", "t2", t0 + 90 * minute, 0.1), // a skip, in a new session
        listen("e2", "ana", "t1", t0 + minute, 0.9),      // a client retry: same event id
        listen("e8", "ben", "t3", t0 + minute, 1.0),      // last: everything before is done
    ];
    let bad: [(&str, Vec<u8>); 4] = [
        ("malformed", b"\xff\xff not protobuf".to_vec()),
        ("fraction", listen("e5", "ana", "t0", t0, 7.0)),
        ("user id", listen("e6", "a b", "t0", t0, 1.0)),
        ("unknown track", listen("e7", "ana", "nope", t0, 1.0)),
    ];
    for (i, p) in good.iter().enumerate() {
        bus.publish(topics::LISTEN, b"k", p.clone(), vec![])
            .await
            .unwrap();
        let (_, b) = &bad[i % bad.len()];
        if i < bad.len() {
            bus.publish(topics::LISTEN, b"k", b.clone(), vec![])
                .await
                .unwrap();
        }
    }

    let index = index_with_tracks().await;
    let mut agg = Aggregator::new(bus.clone(), index.clone(), StateConfig::default(), DIM);
    agg.unknown_track_patience = Duration::from_millis(200);
    let probe = index.clone();
    run_until(agg, || async {
        stored(probe.as_ref(), "ana")
            .await
            .is_some_and(|s| s.listen_count == 3)
            && stored(probe.as_ref(), "ben")
                .await
                .is_some_and(|s| s.listen_count == 2)
    })
    .await;

    let ana = stored(index.as_ref(), "ana").await.unwrap();
    assert_eq!(
        (ana.listen_count, ana.skip_count, ana.session_count),
        (3, 1, 2)
    );
    assert_eq!(ana.profile.n, 2, "the skip does not feed the profile");
    assert_eq!(stored(index.as_ref(), "ben").await.unwrap().listen_count, 2);

    // Every bad event is on the dead-letter topic with a reason a person can read.
    let mut dlq = bus
        .subscribe(
            "probe",
            &[DEAD_LETTER_TOPIC],
            SubscribeOpts {
                from: StartFrom::Earliest,
            },
        )
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for _ in 0..bad.len() {
        let m = tokio::time::timeout(Duration::from_secs(5), dlq.next())
            .await
            .unwrap()
            .unwrap();
        reasons.push(String::from_utf8(m.header(HEADER_REASON).unwrap().to_vec()).unwrap());
    }
    for (want, got) in [
        "protobuf",
        "play fraction",
        "user id",
        "unknown track id `nope`",
    ]
    .iter()
    .zip(&reasons)
    {
        assert!(got.contains(want), "{got:?} should mention {want:?}");
    }

    // Replaying the topic into an empty index (another group) rebuilds the same states.
    let fresh = index_with_tracks().await;
    let mut replay = Aggregator::new(bus.clone(), fresh.clone(), StateConfig::default(), DIM);
    replay.group = "replay".into();
    replay.unknown_track_patience = Duration::from_millis(200);
    let probe = fresh.clone();
    run_until(replay, || async {
        stored(probe.as_ref(), "ana")
            .await
            .is_some_and(|s| s.listen_count == 3)
            && stored(probe.as_ref(), "ben")
                .await
                .is_some_and(|s| s.listen_count == 2)
    })
    .await;
    assert_eq!(stored(fresh.as_ref(), "ana").await, Some(ana));
}

#[tokio::test]
async fn a_redelivered_event_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(dir.path()).await.unwrap());
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
        .await
        .unwrap();
    let index = index_with_tracks().await;
    let agg = Aggregator::new(bus.clone(), index.clone(), StateConfig::default(), DIM);
    let msg = |offset, event: &str| Message {
        topic: topics::LISTEN.into(),
        partition: 0,
        offset,
        key: None,
        payload: listen(event, "cy", "t3", 1_700_000_000_000 + offset, 1.0),
        headers: vec![],
        timestamp_ms: 0,
    };
    for m in [msg(0, "a"), msg(1, "b"), msg(1, "b"), msg(0, "a")] {
        assert!(matches!(agg.handle(&m).await, Outcome::Done));
    }
    let s = stored(index.as_ref(), "cy").await.unwrap();
    assert_eq!(s.listen_count, 2);
    assert_eq!(s.play_counts.values().sum::<u32>(), 2);
    // A redelivery means the crash may have come before the announcement: every handled
    // event announces the state, and the last announcement is the stored state.
    let mut sub = bus
        .subscribe("check", &[topics::USER_STATE], SubscribeOpts::default())
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..4 {
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
            .await
            .expect("four announcements")
            .unwrap();
        last = Some(UserStateUpdated::decode(m.payload.as_slice()).unwrap());
    }
    assert_eq!(last.unwrap().listen_count, 2);
}

#[tokio::test]
async fn a_batch_ends_in_the_states_of_one_event_at_a_time() {
    let msg = |offset: i64, payload: Vec<u8>| Message {
        topic: topics::LISTEN.into(),
        partition: (offset % 2) as i32,
        offset,
        key: None,
        payload,
        headers: vec![],
        timestamp_ms: 0,
    };
    let t0 = 1_700_000_000_000;
    let mut events: Vec<Message> = (0..24)
        .map(|i| {
            let user = ["ann", "bo", "cy"][(i % 3) as usize];
            let track = format!("t{}", i % 4);
            msg(
                i,
                listen(
                    &format!("e{i}"),
                    user,
                    &track,
                    t0 + i * 60_000,
                    0.2 + (i % 5) as f32 * 0.2,
                ),
            )
        })
        .collect();
    events.push(msg(24, b"\x08\xff garbage".to_vec()));
    events.push(events[3].clone()); // a redelivery
    let one_by_one = index_with_tracks().await;
    let batched = index_with_tracks().await;
    let bus = || async {
        let dir = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(dir.path()).await.unwrap());
        bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
            .await
            .unwrap();
        (dir, bus)
    };
    let ((_d1, bus1), (_d2, bus2)) = (bus().await, bus().await);
    let single = Aggregator::new(bus1, one_by_one.clone(), StateConfig::default(), DIM);
    let mut singles = Vec::new();
    for m in &events {
        singles.push(single.handle(m).await);
    }
    let agg = Aggregator::new(bus2, batched.clone(), StateConfig::default(), DIM);
    let outcomes = agg.handle_batch(&events).await;
    assert_eq!(outcomes.len(), events.len());
    for (i, (a, b)) in singles.iter().zip(&outcomes).enumerate() {
        assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "event {i}: {a:?} one by one, {b:?} in the batch"
        );
    }
    assert!(matches!(
        outcomes[24],
        Outcome::Rejected {
            kind: "malformed",
            ..
        }
    ));
    for user in ["ann", "bo", "cy"] {
        let (a, b) = (
            stored(one_by_one.as_ref(), user).await.unwrap(),
            stored(batched.as_ref(), user).await.unwrap(),
        );
        assert_eq!(a.listen_count, 8, "{user}");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap(),
            "{user}"
        );
    }
}

#[tokio::test]
async fn a_batch_with_an_unknown_track_falls_back_to_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(dir.path()).await.unwrap());
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
        .await
        .unwrap();
    let index = index_with_tracks().await;
    let agg = Aggregator::new(bus, index.clone(), StateConfig::default(), DIM);
    let msg = |offset, track: &str| Message {
        topic: topics::LISTEN.into(),
        partition: 0,
        offset,
        key: None,
        payload: listen(
            &format!("e{offset}"),
            "dee",
            track,
            1_700_000_000_000 + offset,
            1.0,
        ),
        headers: vec![],
        timestamp_ms: 0,
    };
    let batch = [msg(0, "t1"), msg(1, "ghost"), msg(2, "t2")];
    let out = agg.handle_batch(&batch).await;
    assert!(matches!(out[0], Outcome::Done), "{out:?}");
    assert!(
        matches!(out[1], Outcome::Retry(_)),
        "the unknown track waits: {out:?}"
    );
    assert!(
        matches!(out[2], Outcome::Retry(_)),
        "and what follows it: {out:?}"
    );
    assert_eq!(stored(index.as_ref(), "dee").await.unwrap().listen_count, 1);
}

#[tokio::test]
async fn cached_states_are_used_while_offsets_continue_and_dropped_when_another_consumer_wrote() {
    let bus = || async {
        let dir = tempfile::tempdir().unwrap();
        let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(dir.path()).await.unwrap());
        bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
            .await
            .unwrap();
        (dir, bus)
    };
    let ((_d1, bus1), (_d2, bus2)) = (bus().await, bus().await);
    let index = index_with_tracks().await;
    let msg = |offset: i64| Message {
        topic: topics::LISTEN.into(),
        partition: 0,
        offset,
        key: None,
        payload: listen(
            &format!("e{offset}"),
            "eve",
            &format!("t{}", offset % 4),
            1_700_000_000_000 + offset * 60_000,
            1.0,
        ),
        headers: vec![],
        timestamp_ms: 0,
    };
    let a = Aggregator::new(bus1, index.clone(), StateConfig::default(), DIM);
    assert!(matches!(
        a.handle_batch(&[msg(0)]).await[..],
        [Outcome::Done]
    ));
    // Offsets continue: the state comes from memory. Shown by taking it from the index
    // behind the aggregator's back — the next write still counts both listens.
    index.delete(USERS, &[point_id("eve")]).await.unwrap();
    assert!(matches!(
        a.handle_batch(&[msg(1)]).await[..],
        [Outcome::Done]
    ));
    assert_eq!(stored(index.as_ref(), "eve").await.unwrap().listen_count, 2);

    // Another consumer takes the partition for offsets 2 and 3 (a rebalance), then it
    // comes back at 4: the cached state (2 listens) is stale and must not be used.
    let b = Aggregator::new(bus2, index.clone(), StateConfig::default(), DIM);
    assert!(matches!(
        b.handle_batch(&[msg(2), msg(3)]).await[..],
        [Outcome::Done, Outcome::Done]
    ));
    assert!(matches!(
        a.handle_batch(&[msg(4)]).await[..],
        [Outcome::Done]
    ));
    let s = stored(index.as_ref(), "eve").await.unwrap();
    assert_eq!(
        s.listen_count, 5,
        "nothing the other consumer applied is lost"
    );

    // Without a cache every state is read back, which the deleted point shows.
    let (_d3, bus3) = bus().await;
    let c = Aggregator::new(bus3, index.clone(), StateConfig::default(), DIM).with_state_cache(0);
    assert!(matches!(
        c.handle_batch(&[msg(5)]).await[..],
        [Outcome::Done]
    ));
    index.delete(USERS, &[point_id("eve")]).await.unwrap();
    assert!(matches!(
        c.handle_batch(&[msg(6)]).await[..],
        [Outcome::Done]
    ));
    assert_eq!(stored(index.as_ref(), "eve").await.unwrap().listen_count, 1);
}

#[test]
fn the_state_is_stored_as_one_string_and_points_written_as_objects_still_read() {
    let mut state = UserState::new(UserId::new("ana").unwrap(), StateConfig::default());
    state.listen_count = 3;
    state.last_event_id = "e3".into();
    let (point, doc) = user_point(&state, DIM).unwrap();
    assert!(point.payload["state"].is_string(), "{:?}", point.payload);
    assert_eq!(state_of(&point.payload).unwrap(), state);
    // The announcement carries the same payload the materialiser will store.
    let announced: Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!(announced["payload"], Value::Object(point.payload.clone()));

    let mut old = point.payload.clone();
    old.insert("state".into(), serde_json::to_value(&state).unwrap());
    assert_eq!(state_of(&old).unwrap(), state);

    old.remove("state");
    let err = state_of(&old).unwrap_err().to_string();
    assert!(err.contains("without a state document"), "{err}");
    old.insert("state".into(), json!("{not json"));
    assert!(state_of(&old).is_err());
}
