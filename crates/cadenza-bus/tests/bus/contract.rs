//! The event bus contract: scenarios every `EventBus` implementation must pass. Each takes
//! the bus and uses its own topics and groups, so scenarios can share one broker and run
//! concurrently.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cadenza_bus::{
    DEAD_LETTER_TOPIC, EventBus, HEADER_REASON, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC, HEADER_STAGE, Message, StartFrom, SubscribeOpts, Subscription, TopicSpec,
    dead_letter,
};

/// Generous: a Kafka consumer's first message includes joining the group.
const RECV_DEADLINE: Duration = Duration::from_secs(30);

const EARLIEST: SubscribeOpts = SubscribeOpts {
    from: StartFrom::Earliest,
};

pub async fn recv(sub: &mut Box<dyn Subscription>) -> Message {
    tokio::time::timeout(RECV_DEADLINE, sub.next())
        .await
        .expect("no message within the deadline")
        .expect("next() failed")
}

async fn recv_n(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(recv(sub).await);
    }
    out
}

async fn topic(bus: &dyn EventBus, name: &str, partitions: i32) {
    bus.ensure_topics(&[TopicSpec::new(name, partitions)])
        .await
        .expect("ensure_topics");
    // Creating it again is not an error.
    bus.ensure_topics(&[TopicSpec::new(name, partitions)])
        .await
        .expect("ensure_topics is idempotent");
}

async fn publish(bus: &dyn EventBus, topic: &str, key: &str, payload: String) {
    bus.publish(topic, key.as_bytes(), payload.into_bytes(), vec![])
        .await
        .expect("publish");
}

fn text(m: &Message) -> String {
    String::from_utf8(m.payload.clone()).expect("utf-8 payload")
}

/// Events of one key arrive in publish order, all from the partition `publish` reported.
pub async fn order_per_key(bus: &dyn EventBus) {
    let t = "contract.order";
    topic(bus, t, 3).await;
    let mut partition_of = BTreeMap::new();
    for seq in 0..20 {
        for k in 0..5 {
            let key = format!("user-{k}");
            let d = bus
                .publish(
                    t,
                    key.as_bytes(),
                    format!("{key}:{seq}").into_bytes(),
                    vec![],
                )
                .await
                .expect("publish");
            let p = *partition_of.entry(key.clone()).or_insert(d.partition);
            assert_eq!(p, d.partition, "one key, one partition");
        }
    }
    let mut sub = bus.subscribe("order-g", &[t], EARLIEST).await.unwrap();
    let mut last: BTreeMap<String, i32> = BTreeMap::new();
    for m in recv_n(&mut sub, 100).await {
        let (key, seq) = text(&m)
            .split_once(':')
            .map(|(k, s)| (k.to_string(), s.parse::<i32>().unwrap()))
            .unwrap();
        assert_eq!(m.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(partition_of[&key], m.partition);
        let prev = last.insert(key.clone(), seq).unwrap_or(-1);
        assert_eq!(seq, prev + 1, "key {key}: {seq} after {prev}");
    }
    assert!(last.values().all(|&s| s == 19));
    sub.close().await.unwrap();
}

/// Two consumer groups each receive every event.
pub async fn groups_each_see_all(bus: &dyn EventBus) {
    let t = "contract.groups";
    topic(bus, t, 2).await;
    let sent: BTreeSet<String> = (0..10).map(|i| format!("e{i}")).collect();
    for (i, e) in sent.iter().enumerate() {
        publish(bus, t, &format!("k{i}"), e.clone()).await;
    }
    for group in ["groups-a", "groups-b"] {
        let mut sub = bus.subscribe(group, &[t], EARLIEST).await.unwrap();
        let got: BTreeSet<String> = recv_n(&mut sub, 10).await.iter().map(text).collect();
        assert_eq!(got, sent, "group {group}");
        sub.close().await.unwrap();
    }
}

/// A member that re-joins resumes right after its last commit: what it read but did not
/// commit comes again (at-least-once), nothing committed does.
pub async fn commit_then_resume(bus: &dyn EventBus) {
    let t = "contract.resume";
    topic(bus, t, 1).await;
    for i in 0..6 {
        publish(bus, t, "k", format!("m{i}")).await;
    }
    let mut sub = bus.subscribe("resume-g", &[t], EARLIEST).await.unwrap();
    let first = recv_n(&mut sub, 4).await;
    assert_eq!(
        first.iter().map(text).collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3"]
    );
    sub.commit(&first[0]).await.unwrap();
    sub.commit(&first[1]).await.unwrap();
    sub.close().await.unwrap();

    let mut sub = bus.subscribe("resume-g", &[t], EARLIEST).await.unwrap();
    let again = recv_n(&mut sub, 4).await;
    assert_eq!(
        again.iter().map(text).collect::<Vec<_>>(),
        ["m2", "m3", "m4", "m5"]
    );
    assert_eq!(again[0].offset, first[2].offset);
    for m in &again {
        sub.commit(m).await.unwrap();
    }
    sub.close().await.unwrap();

    // Everything committed: a new event is the next thing the group sees.
    publish(bus, t, "k", "m6".into()).await;
    let mut sub = bus.subscribe("resume-g", &[t], EARLIEST).await.unwrap();
    assert_eq!(text(&recv(&mut sub).await), "m6");
    sub.close().await.unwrap();
}

/// A new group starting from `Earliest` replays the whole topic, whatever other groups did.
pub async fn earliest_replays_everything(bus: &dyn EventBus) {
    let t = "contract.replay";
    topic(bus, t, 1).await;
    for i in 0..5 {
        publish(bus, t, "k", format!("r{i}")).await;
    }
    let mut sub = bus.subscribe("replay-live", &[t], EARLIEST).await.unwrap();
    for m in recv_n(&mut sub, 5).await {
        sub.commit(&m).await.unwrap();
    }
    sub.close().await.unwrap();

    let mut sub = bus
        .subscribe("replay-rebuild", &[t], EARLIEST)
        .await
        .unwrap();
    let all: Vec<String> = recv_n(&mut sub, 5).await.iter().map(text).collect();
    assert_eq!(all, ["r0", "r1", "r2", "r3", "r4"]);
    sub.close().await.unwrap();
}

/// `end_offsets` is where each partition's next event goes: zero on an empty topic, the
/// count of what each partition holds after publishing (what a rebuild reads up to).
pub async fn end_offsets_count_each_partition(bus: &dyn EventBus) {
    let t = "contract.ends";
    topic(bus, t, 2).await;
    let ends = bus.end_offsets(t).await.unwrap();
    assert!(!ends.is_empty() && ends.len() <= 2, "{ends:?}");
    assert!(ends.iter().all(|e| *e == 0), "{ends:?}");
    let mut want = vec![0i64; ends.len()];
    for i in 0..7 {
        let d = bus
            .publish(t, format!("k{i}").as_bytes(), b"x".to_vec(), vec![])
            .await
            .unwrap();
        want[usize::try_from(d.partition).unwrap()] = d.offset + 1;
    }
    assert_eq!(bus.end_offsets(t).await.unwrap(), want);
    assert_eq!(want.iter().sum::<i64>(), 7);
    assert!(bus.end_offsets("contract.no-such-topic").await.is_err());
}

/// A new group starting from `Latest` never sees what was published before it joined.
pub async fn latest_skips_the_past(bus: &dyn EventBus) {
    let t = "contract.latest";
    topic(bus, t, 1).await;
    publish(bus, t, "k", "old".into()).await;
    let mut sub = bus
        .subscribe(
            "latest-g",
            &[t],
            SubscribeOpts {
                from: StartFrom::Latest,
            },
        )
        .await
        .unwrap();
    // Kafka resolves "latest" when the member gets its partition, a moment after subscribe:
    // keep publishing until something arrives; it must be new.
    let deadline = tokio::time::Instant::now() + RECV_DEADLINE;
    let mut i = 0;
    let m = loop {
        publish(bus, t, "k", format!("new{i}")).await;
        i += 1;
        match tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
            Ok(m) => break m.unwrap(),
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "nothing arrived"),
        }
    };
    assert!(text(&m).starts_with("new"), "got {:?}", text(&m));
    sub.close().await.unwrap();
}

/// Key, payload (empty included), headers (order, binary and empty values) and timestamp
/// survive the trip.
pub async fn headers_round_trip(bus: &dyn EventBus) {
    let t = "contract.headers";
    topic(bus, t, 1).await;
    let headers = vec![
        (
            "traceparent".to_string(),
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
        ),
        ("binary".to_string(), vec![0, 255, 1, 254]),
        ("empty".to_string(), vec![]),
        ("binary".to_string(), b"repeated name".to_vec()),
    ];
    let before = now_ms();
    bus.publish(t, b"track-7", vec![1, 2, 3], headers.clone())
        .await
        .unwrap();
    bus.publish(t, b"", vec![], vec![]).await.unwrap();
    let mut sub = bus.subscribe("headers-g", &[t], EARLIEST).await.unwrap();
    let m = recv(&mut sub).await;
    assert_eq!(m.topic, t);
    assert_eq!(m.key.as_deref(), Some(&b"track-7"[..]));
    assert_eq!(m.payload, [1, 2, 3]);
    assert_eq!(m.headers, headers);
    assert_eq!(m.header("binary"), Some(&[0, 255, 1, 254][..]));
    assert!(
        (before - 5_000..now_ms() + 5_000).contains(&m.timestamp_ms),
        "timestamp {} not around {before}",
        m.timestamp_ms
    );
    let empty = recv(&mut sub).await;
    assert_eq!(
        (empty.key, empty.payload, empty.headers),
        (None, vec![], vec![])
    );
    sub.close().await.unwrap();
}

/// `dead_letter` parks the original event with the reason and its origin in headers.
pub async fn dead_letter_has_headers(bus: &dyn EventBus) {
    let t = "contract.dlq-source";
    topic(bus, t, 1).await;
    bus.ensure_topics(&[TopicSpec::new(DEAD_LETTER_TOPIC, 1)])
        .await
        .unwrap();
    let original_headers = vec![("traceparent".to_string(), b"tp".to_vec())];
    bus.publish(
        t,
        b"user-1",
        b"not protobuf".to_vec(),
        original_headers.clone(),
    )
    .await
    .unwrap();
    let mut sub = bus.subscribe("dlq-stage", &[t], EARLIEST).await.unwrap();
    let original = recv(&mut sub).await;
    dead_letter(
        bus,
        &original,
        "malformed protobuf: unexpected EOF",
        "session-aggregation",
    )
    .await
    .unwrap();
    sub.commit(&original).await.unwrap();
    sub.close().await.unwrap();

    let mut dlq = bus
        .subscribe("dlq-reader", &[DEAD_LETTER_TOPIC], EARLIEST)
        .await
        .unwrap();
    // Other scenarios may share the dead-letter topic: find ours by source topic.
    let parked = loop {
        let m = recv(&mut dlq).await;
        if m.header(HEADER_SOURCE_TOPIC) == Some(t.as_bytes()) {
            break m;
        }
    };
    assert_eq!(parked.payload, b"not protobuf");
    assert_eq!(parked.key.as_deref(), Some(&b"user-1"[..]));
    assert_eq!(parked.header("traceparent"), Some(&b"tp"[..]));
    assert_eq!(
        parked.header(HEADER_REASON),
        Some(&b"malformed protobuf: unexpected EOF"[..])
    );
    assert_eq!(
        parked.header(HEADER_STAGE),
        Some(&b"session-aggregation"[..])
    );
    assert_eq!(
        parked.header(HEADER_SOURCE_PARTITION),
        Some(original.partition.to_string().as_bytes())
    );
    assert_eq!(
        parked.header(HEADER_SOURCE_OFFSET),
        Some(original.offset.to_string().as_bytes())
    );
    dlq.close().await.unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Declares one `#[tokio::test]` per contract scenario. `$make` is an async expression
/// yielding `Option<fixture>` (`None`: skipped, the fixture said why) where the fixture has
/// `fn bus(&self) -> &dyn EventBus`.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            order_per_key, groups_each_see_all, commit_then_resume,
            earliest_replays_everything, latest_skips_the_past, headers_round_trip,
            dead_letter_has_headers, end_offsets_count_each_partition);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some(fixture) = $make else { return };
                $crate::contract::$name(fixture.bus()).await;
            }
        )*
    };
}
