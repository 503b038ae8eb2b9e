//! [`KafkaBus`]: the event bus of the distributed mode, over Apache Kafka with rdkafka.
//!
//! - Producer: idempotent (`enable.idempotence=true`, `acks=all`), so retries after a lost
//!   acknowledgement never duplicate or reorder events; `publish` resolves when the broker
//!   acknowledged the event, or fails after [`KafkaConfig::delivery_timeout`].
//! - Consumers: `enable.auto.offset.store=false`; `Subscription::commit` stores the offset
//!   after processing and stored offsets are committed periodically, on partition revoke and
//!   on close. At-least-once, safe under rebalances.
//! - Topics: created explicitly by `ensure_topics` with the asked partition count (brokers run
//!   with `auto.create.topics.enable=false`); "already exists" is success.

mod config;
mod consumer;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

pub use self::config::KafkaConfig;
use self::consumer::{BusContext, KafkaSubscription};
use crate::{
    Delivery, Error, EventBus, Result, StartFrom, SubscribeOpts, Subscription, TopicSpec,
    validate_topic,
};

/// How long `ensure_topics` waits for new topics to show up in the cluster's metadata.
const TOPIC_READY_DEADLINE: Duration = Duration::from_secs(30);

/// The Kafka-backed event bus. One producer and one admin client per bus; one consumer per
/// subscription.
pub struct KafkaBus {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("bootstrap_servers", &self.config.bootstrap_servers)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Create the producer and admin client. Connections are made lazily: this does not fail
    /// when the brokers are down, the first publish does (after the delivery timeout).
    pub fn new(config: KafkaConfig) -> Result<KafkaBus> {
        let producer = config.producer().create()?;
        let admin = config.admin().create()?;
        Ok(KafkaBus {
            config,
            producer,
            admin,
        })
    }

    /// The configuration this bus was built with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Wait until publishes in flight are acknowledged (call before shutting down).
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout)))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        Ok(())
    }

    /// Poll cluster metadata until every topic in `names` is known with its partitions.
    async fn wait_for_topics(&self, names: Vec<String>) -> Result<()> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + TOPIC_READY_DEADLINE;
            for name in &names {
                loop {
                    let ready = producer
                        .client()
                        .fetch_metadata(Some(name), Timeout::After(Duration::from_secs(5)))
                        .map(|md| {
                            md.topics().iter().any(|t| {
                                t.name() == name
                                    && t.error().is_none()
                                    && !t.partitions().is_empty()
                            })
                        })
                        .unwrap_or(false);
                    if ready {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout(format!(
                            "topic {name:?} in cluster metadata"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        for spec in topics {
            validate_topic(&spec.name)?;
        }
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                NewTopic::new(
                    &t.name,
                    t.partitions.max(1),
                    TopicReplication::Fixed(self.config.replication_factor),
                )
            })
            .collect();
        let opts =
            AdminOptions::new().operation_timeout(Some(Timeout::After(TOPIC_READY_DEADLINE)));
        for result in self.admin.create_topics(&new, &opts).await? {
            match result {
                Ok(name) => tracing::info!(topic = %name, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
            }
        }
        self.wait_for_topics(topics.iter().map(|t| t.name.clone()).collect())
            .await
    }

    async fn publish(
        &self,
        topic: &str,
        key: &[u8],
        payload: Vec<u8>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Result<Delivery> {
        validate_topic(topic)?;
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in &headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .payload(payload.as_slice())
            .headers(owned);
        // An empty key means "no key": Kafka then spreads events over partitions.
        if !key.is_empty() {
            record = record.key(key);
        }
        let delivery = self
            .producer
            .send(record, Timeout::After(self.config.delivery_timeout))
            .await
            .map_err(|(e, _)| Error::Kafka(e))?;
        Ok(Delivery {
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        validate_topic(topic)?;
        let producer = self.producer.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let client = producer.client();
            let metadata = client.fetch_metadata(Some(&topic), TOPIC_READY_DEADLINE)?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::UnknownTopic(topic.clone()))?;
            (0..partitions)
                .map(|p| {
                    let p = i32::try_from(p).expect("partition count fits i32");
                    let (_low, high) = client.fetch_watermarks(&topic, p, TOPIC_READY_DEADLINE)?;
                    Ok(high)
                })
                .collect()
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
        opts: SubscribeOpts,
    ) -> Result<Box<dyn Subscription>> {
        for t in topics {
            validate_topic(t)?;
        }
        let reset = match opts.from {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        let context = BusContext::new(group);
        let lag = context.lag();
        let consumer: StreamConsumer<BusContext> = self
            .config
            .consumer(group, reset)
            .create_with_context(context)?;
        consumer.subscribe(topics)?;
        Ok(Box::new(KafkaSubscription {
            consumer,
            group: group.to_string(),
            lag,
            closed: false,
        }))
    }
}
