//! [`KafkaConfig`]: how to reach the cluster, and the settings cadenza relies on.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

/// Connection and tuning for [`super::KafkaBus`]. The settings the bus's guarantees depend
/// on (idempotence, `acks=all`, manual offset store) are not here: they are always set.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// Shows up in broker logs and metrics; consumers append their group.
    pub client_id: String,
    /// How long `publish` may take, retries included, before it fails
    /// (`message.timeout.ms`). Default 30 s.
    pub delivery_timeout: Duration,
    /// How often stored offsets are committed while consuming (`auto.commit.interval.ms`);
    /// they are also committed on rebalance and close. Default 1 s.
    pub commit_interval: Duration,
    /// A consumer silent this long is dropped from its group and its partitions move
    /// (`session.timeout.ms`). Default 10 s: a killed service's partitions move quickly.
    pub session_timeout: Duration,
    /// Replication factor of topics created by `ensure_topics`; -1 takes the broker's
    /// `default.replication.factor`. Default -1.
    pub replication_factor: i32,
    /// How often consumers report statistics, from which `Subscription::lag` is taken.
    /// Zero disables statistics (and lag). Default 5 s.
    pub stats_interval: Duration,
    /// Extra librdkafka properties for every client (producer, consumers, admin), applied
    /// last: TLS (`security.protocol`, `ssl.*`), SASL (`sasl.*`), tuning. See librdkafka's
    /// CONFIGURATION.md.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Defaults for a cluster at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "cadenza".to_string(),
            delivery_timeout: Duration::from_secs(30),
            commit_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(10),
            replication_factor: -1,
            stats_interval: Duration::from_secs(5),
            properties: BTreeMap::new(),
        }
    }

    /// Set an extra librdkafka property (see [`KafkaConfig::properties`]).
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    fn base(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id);
        c
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn admin(&self) -> ClientConfig {
        self.finish(self.base(&self.client_id))
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.base(&self.client_id);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", millis(self.delivery_timeout))
            // Java clients' partitioner, so events keep their partition whichever client
            // (ours, Kafka tools, a JVM producer) wrote them.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            // State announcements carry a listener's whole state as JSON (~15 KB): lz4 cuts
            // what the broker writes and replicates several times over for little CPU.
            .set("compression.type", "lz4");
        self.finish(c)
    }

    pub(crate) fn consumer(&self, group: &str, reset: &str) -> ClientConfig {
        let mut c = self.base(&format!("{}-{group}", self.client_id));
        c.set("group.id", group)
            // Offsets are stored by `commit` after processing, never on delivery; stored
            // offsets are committed in the background, on rebalance and on close.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", millis(self.commit_interval))
            .set("auto.offset.reset", reset)
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("allow.auto.create.topics", "false")
            .set("statistics.interval.ms", millis(self.stats_interval));
        self.finish(c)
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}
