//! Event bus seam: the one trait cadenza's services publish and consume events through, with
//! two implementations — [`KafkaBus`] (Apache Kafka via rdkafka, the distributed mode) and
//! [`LogBus`] (an append-only, crash-safe log on disk, the embedded mode).
//!
//! The bus moves bytes: event types (protobuf) live in `cadenza-proto`, so this crate knows
//! nothing about what flows through it.
//!
//! Delivery is **at-least-once** for both implementations: [`EventBus::publish`] returns
//! only once the event is durable, and a consumer's position advances only when it calls
//! [`Subscription::commit`] after processing a message. Messages processed but not yet
//! committed when a consumer dies are delivered again, so consumers must be idempotent
//! (e.g. remember the last applied offset next to the state they write).
//!
//! Services hold an `Arc<dyn EventBus>`; which one they get is the wiring's choice.

mod dead_letter;
mod error;
pub mod kafka;
pub mod log;

use std::fmt::Debug;

use async_trait::async_trait;

pub use dead_letter::{
    DEAD_LETTER_TOPIC, HEADER_REASON, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC, HEADER_STAGE, dead_letter,
};
pub use error::{Error, Result};
pub use kafka::{KafkaBus, KafkaConfig};
pub use log::{LogBus, LogBusOptions};

/// One consumed event, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic it was read from.
    pub topic: String,
    /// Partition within the topic ([`LogBus`] always uses 0).
    pub partition: i32,
    /// Position within the partition; increases by one per event in [`LogBus`], and
    /// increases (not necessarily by one) in Kafka.
    pub offset: i64,
    /// The partitioning key given to [`EventBus::publish`] (`None` if it was empty in Kafka).
    pub key: Option<Vec<u8>>,
    /// The event's bytes.
    pub payload: Vec<u8>,
    /// Headers in publish order (trace context, dead-letter reasons, …).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Time the event was published, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Message {
    /// The first header called `name`, if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Where a published event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Partition chosen from the key.
    pub partition: i32,
    /// Offset within that partition.
    pub offset: i64,
}

/// A topic the caller needs, with its partition count (the unit of consumer parallelism).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name: ASCII letters, digits, `.`, `_`, `-` (Kafka's rule), at most 249 chars.
    pub name: String,
    /// Partitions to create the topic with. [`LogBus`] keeps one partition per topic
    /// whatever is asked; existing topics are never re-partitioned.
    pub partitions: i32,
}

impl TopicSpec {
    /// A topic spec.
    pub fn new(name: impl Into<String>, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions,
        }
    }
}

/// Where a consumer group starts reading a partition for which it has no committed offset.
/// A group with committed offsets always resumes after them (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From the oldest retained event: replays everything (rebuilding derived state).
    #[default]
    Earliest,
    /// Only events published after the subscription started.
    Latest,
}

/// Options of [`EventBus::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscribeOpts {
    /// Start position for partitions without a committed offset.
    pub from: StartFrom,
}

/// The seam between services and the transport of their events.
#[async_trait]
pub trait EventBus: Send + Sync + Debug {
    /// Create the topics that do not exist yet. Existing topics are left alone.
    async fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()>;

    /// Append one event to `topic`, partitioned by `key` (same key, same partition, so events
    /// of one key stay in order). Returns once the event is durable: acknowledged by all
    /// in-sync replicas (Kafka `acks=all`, idempotent producer) or written and fsynced
    /// ([`LogBus`]).
    async fn publish(
        &self,
        topic: &str,
        key: &[u8],
        payload: Vec<u8>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Result<Delivery>;

    /// The offset the next event of each partition of `topic` will get (index = partition):
    /// where a replay that started now ends. What a rebuild reads up to, so that it stops
    /// at a consistent point while producers keep writing.
    async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>>;

    /// Join consumer group `group` reading `topics`. Every group sees every event; within a
    /// group, each partition is read by one member at a time.
    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
        opts: SubscribeOpts,
    ) -> Result<Box<dyn Subscription>>;
}

/// A consumer group member's stream of events.
#[async_trait]
pub trait Subscription: Send {
    /// The next event, waiting for one if none is available.
    async fn next(&mut self) -> Result<Message>;

    /// Mark `message` as processed: after a restart the group resumes after it. Call this
    /// only once the effects of processing are stored. Offsets are stored at once and
    /// persisted in the background (periodically, and on rebalance and close), so a crash
    /// may redeliver the last moments' messages — never skip one.
    async fn commit(&mut self, message: &Message) -> Result<()>;

    /// Persist committed offsets and leave the group.
    async fn close(self: Box<Self>) -> Result<()>;

    /// Events on this member's partitions not yet committed (published minus committed), if
    /// known cheaply: the backlog an autoscaler or a "caught up?" check looks at. [`KafkaBus`]
    /// takes it from client statistics, refreshed every
    /// [`KafkaConfig::stats_interval`] while `next` is being awaited.
    fn lag(&self) -> Option<i64> {
        None
    }
}

/// Checks a topic name against Kafka's rule, which also makes it a safe file name.
pub(crate) fn validate_topic(name: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > 249
        || name == "."
        || name == ".."
        || !name.chars().all(legal)
    {
        return Err(Error::InvalidTopic(name.to_string()));
    }
    Ok(())
}
