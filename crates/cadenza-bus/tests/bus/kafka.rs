//! `KafkaBus` on a real Apache Kafka broker (one per test binary, from `cadenza-testkit`):
//! the contract, plus what only Kafka has — partitions moving between members.
//!
//! `CADENZA_SKIP_KAFKA=1` skips these with a visible message (machines without a JDK).

use std::time::Duration;

use cadenza_bus::{EventBus, KafkaBus, KafkaConfig, StartFrom, SubscribeOpts, TopicSpec};
use cadenza_testkit::KafkaBroker;

use crate::contract::recv;

pub struct Fixture {
    bus: KafkaBus,
}

impl Fixture {
    pub async fn new() -> Option<Fixture> {
        if std::env::var_os("CADENZA_SKIP_KAFKA").is_some() {
            eprintln!("SKIPPED: Kafka contract test (CADENZA_SKIP_KAFKA is set)");
            return None;
        }
        let broker = tokio::task::spawn_blocking(KafkaBroker::shared)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut config = KafkaConfig::new(broker.bootstrap());
        config.client_id = "cadenza-bus-test".into();
        config.stats_interval = Duration::from_millis(500);
        Some(Fixture {
            bus: KafkaBus::new(config).unwrap(),
        })
    }

    pub fn bus(&self) -> &dyn EventBus {
        &self.bus
    }
}

crate::contract_tests!(Fixture::new().await);

/// A second member joining takes over some partitions; the first member's committed work is
/// not redone and nothing is lost across the handover.
#[tokio::test]
async fn rebalance_hands_over_without_loss() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let t = "kafka.rebalance";
    f.bus.ensure_topics(&[TopicSpec::new(t, 4)]).await.unwrap();
    let earliest = SubscribeOpts {
        from: StartFrom::Earliest,
    };
    for i in 0..40 {
        f.bus
            .publish(
                t,
                format!("k{i}").as_bytes(),
                i.to_string().into_bytes(),
                vec![],
            )
            .await
            .unwrap();
    }
    let mut a = f
        .bus
        .subscribe("rebalance-g", &[t], earliest)
        .await
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let m = recv(&mut a).await;
        a.commit(&m).await.unwrap();
        seen.insert(String::from_utf8(m.payload).unwrap());
    }
    // b joins: the group rebalances; a commits on revoke. Both keep consuming until all 40
    // distinct events were seen between them.
    let mut b = f
        .bus
        .subscribe("rebalance-g", &[t], earliest)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "saw only {} of 40",
            seen.len()
        );
        tokio::select! {
            m = a.next() => { let m = m.unwrap(); a.commit(&m).await.unwrap(); seen.insert(String::from_utf8(m.payload).unwrap()); }
            m = b.next() => { let m = m.unwrap(); b.commit(&m).await.unwrap(); seen.insert(String::from_utf8(m.payload).unwrap()); }
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// `lag()` comes from consumer statistics: it reflects what was stored by `commit`.
#[tokio::test]
async fn lag_is_reported_from_statistics() {
    let Some(f) = Fixture::new().await else {
        return;
    };
    let t = "kafka.lag";
    f.bus.ensure_topics(&[TopicSpec::new(t, 1)]).await.unwrap();
    for i in 0..10 {
        f.bus
            .publish(t, b"k", i.to_string().into_bytes(), vec![])
            .await
            .unwrap();
    }
    let earliest = SubscribeOpts {
        from: StartFrom::Earliest,
    };
    let mut sub = f.bus.subscribe("lag-g", &[t], earliest).await.unwrap();
    // Read everything, commit only the first three: 7 processed-but-uncommitted remain.
    for i in 0..10 {
        let m = recv(&mut sub).await;
        if i < 3 {
            sub.commit(&m).await.unwrap();
        }
    }
    // Statistics are served while the consumer is polled: keep waiting for (no) messages.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while sub.lag() != Some(7) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lag stayed {:?}",
            sub.lag()
        );
        let nothing = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
        assert!(nothing.is_err(), "no more messages expected");
    }
    sub.close().await.unwrap();
}

/// The broker is killed (-9) and restarted mid-stream: every acknowledged event is still
/// there, publishing resumes, and a consumer group picks up where it committed.
#[tokio::test]
async fn broker_restart_loses_nothing_acknowledged() {
    if std::env::var_os("CADENZA_SKIP_KAFKA").is_some() {
        eprintln!("SKIPPED: Kafka broker restart test (CADENZA_SKIP_KAFKA is set)");
        return;
    }
    // Its own broker: killing the shared one would break the tests running beside this one.
    let broker = tokio::task::spawn_blocking(KafkaBroker::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let bus = KafkaBus::new(KafkaConfig::new(broker.bootstrap())).unwrap();
    let t = "kafka.restart";
    bus.ensure_topics(&[TopicSpec::new(t, 2)]).await.unwrap();
    let earliest = SubscribeOpts {
        from: StartFrom::Earliest,
    };
    let publish = |i: i32| {
        let bus = &bus;
        async move {
            bus.publish(
                t,
                format!("k{}", i % 5).as_bytes(),
                i.to_string().into_bytes(),
                vec![],
            )
            .await
            .unwrap()
        }
    };
    for i in 0..20 {
        publish(i).await;
    }
    let mut sub = bus.subscribe("restart-g", &[t], earliest).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let m = recv(&mut sub).await;
        sub.commit(&m).await.unwrap();
        seen.insert(String::from_utf8(m.payload).unwrap());
    }
    sub.close().await.unwrap();

    let data = broker.log_dir();
    let broker = std::sync::Arc::new(broker);
    let b = broker.clone();
    tokio::task::spawn_blocking(move || {
        b.kill().unwrap();
        assert!(!b.is_running());
        b.restart().unwrap();
    })
    .await
    .unwrap();
    // The producer reconnects by itself; these wait out the restart inside delivery timeout.
    for i in 20..30 {
        publish(i).await;
    }

    let mut sub = bus.subscribe("restart-g", &[t], earliest).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "saw {} of 30; broker logs in {}",
            seen.len(),
            data.display()
        );
        let m = recv(&mut sub).await;
        sub.commit(&m).await.unwrap();
        seen.insert(String::from_utf8(m.payload).unwrap());
    }
    sub.close().await.unwrap();
}
