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
