//! The one consumer loop every service uses: take an event, process it, and only then commit.
//!
//! The handler says what happened: processed (commit), a bad event (send it to the
//! dead-letter topic with the reason, count it, commit — one bad event never blocks the
//! rest), or a transient failure (retry the same event with backoff, never commit past it —
//! nothing is lost while the index or broker is away).

use std::future::Future;
use std::time::Duration;

use cadenza_bus::{EventBus, Message, SubscribeOpts};

use crate::metrics;
use crate::shutdown::Shutdown;

/// What processing one event came to.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// The event itself is bad; `kind` is a low-cardinality label, `reason` for a person.
    Rejected {
        kind: &'static str,
        reason: String,
    },
    /// Try again later (the event may be fine; a dependency is not).
    Retry(anyhow::Error),
}

/// Consume `topics` as `group` until shutdown, handing `handle` every event already
/// available (at most `max_batch`, at least one) at once; it returns one [`Outcome`] per event,
/// in order. Events up to the first `Retry` are committed (dead letters sent first); from the
/// first `Retry` on, the rest of the batch is handed over again after a backoff. Handlers must
/// be idempotent, as for [`run`]: a retried batch repeats effects already made.
pub async fn run_batched<F, Fut>(
    bus: &dyn EventBus,
    group: &str,
    topics: &[&str],
    stage: &'static str,
    shutdown: Shutdown,
    max_batch: usize,
    mut handle: F,
) -> anyhow::Result<()>
where
    F: FnMut(Vec<Message>) -> Fut,
    Fut: Future<Output = Vec<Outcome>>,
{
    let processed = metrics::counter(
        "events_processed_total",
        "events consumed, by stage and outcome",
        &["stage", "outcome"],
    );
    let dead = metrics::counter(
        "dead_letters_total",
        "events sent to the dead-letter topic",
        &["stage", "reason"],
    );
    let lag_gauge = metrics::gauge(
        "consumer_lag",
        "events published but not yet processed, by consumer group and topic",
        &["group", "topic"],
    );
    let batches = metrics::counter(
        "consumer_batches_total",
        "batches handled, by stage (events_processed_total / this = mean batch size)",
        &["stage"],
    );
    let mut sub = bus
        .subscribe(group, topics, SubscribeOpts::default())
        .await?;
    tracing::info!(group, ?topics, max_batch, "consuming in batches");
    loop {
        let first = tokio::select! {
            m = sub.next() => m?,
            _ = shutdown.wait() => break,
        };
        let mut batch = vec![first];
        // Whatever else is already here, without waiting (`next` is cancel-safe).
        while batch.len() < max_batch.max(1) {
            match tokio::time::timeout(Duration::ZERO, sub.next()).await {
                Ok(m) => batch.push(m?),
                Err(_) => break,
            }
        }
        batches.with_label_values(&[stage]).inc();
        let last_topic = batch.last().map(|m| m.topic.clone()).unwrap_or_default();
        let mut backoff = Duration::from_millis(50);
        while !batch.is_empty() {
            let outcomes = handle(batch.clone()).await;
            anyhow::ensure!(
                outcomes.len() == batch.len(),
                "{stage}: {} outcomes for {} events",
                outcomes.len(),
                batch.len()
            );
            let mut retry_from = None;
            for (i, (msg, outcome)) in batch.iter().zip(outcomes).enumerate() {
                match outcome {
                    Outcome::Done => {
                        processed.with_label_values(&[stage, "ok"]).inc();
                    }
                    Outcome::Rejected { kind, reason } => {
                        tracing::warn!(stage, kind, topic = %msg.topic, offset = msg.offset, "rejected event: {reason}");
                        cadenza_bus::dead_letter(bus, msg, &reason, stage).await?;
                        processed.with_label_values(&[stage, "rejected"]).inc();
                        dead.with_label_values(&[stage, kind]).inc();
                    }
                    Outcome::Retry(e) => {
                        processed.with_label_values(&[stage, "retry"]).inc();
                        tracing::warn!(
                            stage,
                            offset = msg.offset,
                            "will retry in {backoff:?}: {e:#}"
                        );
                        retry_from = Some(i);
                        break;
                    }
                }
                sub.commit(msg).await?;
            }
            let Some(i) = retry_from else { break };
            batch.drain(..i);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait() => {
                    // Not committed: redelivered after restart.
                    sub.close().await?;
                    return Ok(());
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        if let Some(lag) = sub.lag() {
            lag_gauge.with_label_values(&[group, &last_topic]).set(lag);
        }
    }
    sub.close().await?;
    tracing::info!(group, "consumer stopped, offsets committed");
    Ok(())
}

/// Consume `topics` as `group` until shutdown, calling `handle` for each event: the batched
/// loop with batches of one.
pub async fn run<F, Fut>(
    bus: &dyn EventBus,
    group: &str,
    topics: &[&str],
    stage: &'static str,
    shutdown: Shutdown,
    mut handle: F,
) -> anyhow::Result<()>
where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = Outcome>,
{
    run_batched(bus, group, topics, stage, shutdown, 1, |mut batch| {
        let one = handle(batch.pop().expect("a batch holds at least one event"));
        async move { vec![one.await] }
    })
    .await
}
