//! Kafka consumer group member: manual offset store after processing, stored offsets
//! committed in the background and whenever partitions are revoked or the member closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use rdkafka::Message as _;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use crate::{Error, Message, Result, Subscription};

/// Commits on revoke, turns statistics into lag, and routes librdkafka's log to `tracing`.
#[derive(Debug)]
pub(crate) struct BusContext {
    group: String,
    /// Sum of per-partition lag from the last statistics; -1 until the first report.
    lag: Arc<AtomicI64>,
}

impl BusContext {
    pub fn new(group: &str) -> BusContext {
        BusContext {
            group: group.to_string(),
            lag: Arc::new(AtomicI64::new(-1)),
        }
    }

    /// Shared handle on the lag the statistics callback updates.
    pub fn lag(&self) -> Arc<AtomicI64> {
        self.lag.clone()
    }
}

impl ClientContext for BusContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(group = %self.group, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(group = %self.group, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(group = %self.group, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(group = %self.group, facility = fac, "librdkafka: {message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(group = %self.group, %error, "kafka client error: {reason}");
    }

    fn stats(&self, stats: Statistics) {
        // Lag behind what `commit` stored, else behind the group's committed offset; a
        // partition with neither known yet makes the total unknown.
        let lags: Option<Vec<i64>> = stats
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.fetch_state == "active")
            .map(|p| {
                [p.consumer_lag_stored, p.consumer_lag]
                    .into_iter()
                    .find(|&l| l >= 0)
            })
            .collect();
        self.lag
            .store(lags.map_or(-1, |l| l.into_iter().sum()), Ordering::Relaxed);
    }
}

impl ConsumerContext for BusContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // The partitions are about to go to another member: commit what we processed so
            // it starts right after it instead of redoing our work.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => {
                    tracing::debug!(group = %self.group, revoked = partitions.count(), "committed on revoke")
                }
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "commit on revoke failed; the new owner re-processes from the last commit")
                }
            }
        }
    }
}

pub(crate) struct KafkaSubscription {
    pub consumer: StreamConsumer<BusContext>,
    pub group: String,
    pub lag: Arc<AtomicI64>,
    pub closed: bool,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn to_message(m: &BorrowedMessage<'_>) -> Message {
    Message {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().filter(|k| !k.is_empty()).map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
    }
}

/// Commit stored offsets; "nothing to commit" is not an error.
fn commit_stored(consumer: &StreamConsumer<BusContext>) -> Result<()> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Message> {
        let m = self.consumer.recv().await?;
        Ok(to_message(&m))
    }

    async fn commit(&mut self, message: &Message) -> Result<()> {
        // rd_kafka_offset_store stores offset + 1: the next message to read.
        match self
            .consumer
            .store_offset(&message.topic, message.partition, message.offset)
        {
            Ok(()) => Ok(()),
            // The partition was revoked while the message was being processed; its new owner
            // re-reads from the last commit, so the message is processed again (at-least-once).
            Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                tracing::debug!(
                    group = %self.group,
                    topic = %message.topic,
                    partition = message.partition,
                    offset = message.offset,
                    "partition no longer assigned; offset not stored"
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        // Committing and leaving the group block on the broker: off the async threads.
        tokio::task::spawn_blocking(move || {
            self.closed = true;
            let result = commit_stored(&self.consumer);
            self.consumer.unsubscribe();
            // Dropping the consumer closes it: it leaves the group at once, so its partitions
            // move without waiting for the session timeout.
            drop(self);
            result
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    fn lag(&self) -> Option<i64> {
        let lag = self.lag.load(Ordering::Relaxed);
        (lag >= 0).then_some(lag)
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        if !self.closed
            && let Err(e) = commit_stored(&self.consumer)
        {
            tracing::warn!(group = %self.group, error = %e, "commit on drop failed");
        }
    }
}
