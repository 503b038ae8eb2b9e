//! The crate's error type.

use std::path::PathBuf;

/// Everything the event bus can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topic name outside Kafka's rule (letters, digits, `.`, `_`, `-`; ≤ 249 chars).
    #[error("invalid topic name {0:?}: use ASCII letters, digits, '.', '_' and '-' (at most 249)")]
    InvalidTopic(String),
    /// A consumer group name [`crate::LogBus`] cannot use as a file name (same rule as topics).
    #[error("invalid consumer group name {0:?}: use ASCII letters, digits, '.', '_' and '-'")]
    InvalidGroup(String),
    /// Publishing to or subscribing to a topic nobody created ([`crate::EventBus::ensure_topics`]).
    #[error("unknown topic {0:?}: create it with ensure_topics first")]
    UnknownTopic(String),
    /// [`crate::LogBus`] has one partition per topic, so one member per group and topic.
    #[error("consumer group {group:?} already has a live member reading {topic:?}")]
    GroupBusy {
        /// The group.
        group: String,
        /// The topic it already reads.
        topic: String,
    },
    /// A message given to `commit` that this subscription did not deliver.
    #[error("cannot commit {topic}/{partition}@{offset}: not read by this subscription")]
    NotSubscribed {
        /// The message's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
    /// An event larger than the bus accepts.
    #[error("event of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of key + payload + headers.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Reading or writing the on-disk log failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A committed-offsets file that does not parse (it is written atomically, so this means
    /// outside interference).
    #[error("{}: corrupt offsets file: {reason}", path.display())]
    CorruptOffsets {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The Kafka client reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Creating a topic on the broker failed.
    #[error("kafka: creating topic {topic:?} failed: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: rdkafka::types::RDKafkaErrorCode,
    },
    /// Waiting on the broker (topic metadata, shutdown) took longer than its deadline.
    #[error("kafka: timed out waiting for {0}")]
    Timeout(String),
    /// A background task (blocking file I/O) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
