//! Which bus a process uses, from flags / `CADENZA_*` variables: Apache Kafka when brokers are
//! given, else the in-process log under the data dir (the embedded default).

use std::path::Path;
use std::sync::Arc;

use cadenza_bus::{EventBus, KafkaBus, KafkaConfig, LogBus};
use clap::Args;

/// Event-bus settings shared by every service.
#[derive(Debug, Clone, Args)]
pub struct BusArgs {
    /// Kafka bootstrap servers (host:port,…). Unset: the in-process log under the data dir.
    #[arg(long, env = "CADENZA_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Extra librdkafka properties, comma separated `key=value` (TLS, SASL, tuning).
    #[arg(long, env = "CADENZA_KAFKA_PROPERTIES", value_delimiter = ',')]
    pub kafka_properties: Vec<String>,
    /// SASL user name (sets `sasl.username`).
    #[arg(long, env = "CADENZA_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password (sets `sasl.password`; never logged).
    #[arg(long, env = "CADENZA_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// Partitions of the topics this process creates.
    #[arg(long, env = "CADENZA_TOPIC_PARTITIONS", default_value_t = 6)]
    pub topic_partitions: i32,
}

impl BusArgs {
    /// Problems with these settings, each a sentence (reported all at once at start-up).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.kafka_properties {
            if !p.contains('=') {
                out.push(format!("--kafka-properties: `{p}` is not key=value"));
            }
        }
        if !(1..=1024).contains(&self.topic_partitions) {
            out.push(format!(
                "--topic-partitions {} is outside 1..=1024",
                self.topic_partitions
            ));
        }
        out
    }

    /// Connect: Kafka if brokers are set, else a [`LogBus`] in `data_dir/bus`.
    pub async fn connect(
        &self,
        client_id: &str,
        data_dir: &Path,
    ) -> anyhow::Result<Arc<dyn EventBus>> {
        match &self.kafka_brokers {
            Some(brokers) => {
                let mut cfg = KafkaConfig::new(brokers.clone());
                cfg.client_id = client_id.to_owned();
                for p in &self.kafka_properties {
                    if let Some((k, v)) = p.split_once('=') {
                        cfg = cfg.with_property(k.trim(), v.trim());
                    }
                }
                if let Some(u) = &self.kafka_sasl_username {
                    cfg = cfg.with_property("sasl.username", u.clone());
                }
                if let Some(pw) = &self.kafka_sasl_password {
                    cfg = cfg.with_property("sasl.password", pw.clone());
                }
                tracing::info!(brokers = %brokers, "event bus: Apache Kafka");
                Ok(Arc::new(KafkaBus::new(cfg)?))
            }
            None => {
                let dir = data_dir.join("bus");
                tracing::info!(dir = %dir.display(), "event bus: in-process log");
                Ok(Arc::new(LogBus::open(&dir).await?))
            }
        }
    }
}

/// Vector-index settings shared by every service.
#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// Qdrant server (gRPC, e.g. http://qdrant:6334). Unset: Qdrant's engine in process
    /// (qdrant-edge) under the data dir.
    #[arg(long, env = "CADENZA_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// Qdrant API key (never logged).
    #[arg(long, env = "CADENZA_QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Settings of the in-process index (ignored with a Qdrant server).
    #[command(flatten)]
    pub edge: EdgeArgs,
}

/// Settings of the in-process index (qdrant-edge), shared by the services and `cadenza up`.
#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// Memory for recently read points (listener states, track metadata and vectors) per
    /// collection of the in-process index, in MiB; 0 turns the cache off.
    #[arg(long, env = "CADENZA_INDEX_CACHE_MB", default_value_t = cadenza_index::EdgeOptions::DEFAULT_CACHE_MB)]
    pub index_cache_mb: usize,
    /// Compression of the vectors the in-process index searches with, for collections it
    /// creates: `int8` (a quarter of the memory, faster graph search, hits re-scored exactly)
    /// or `none`. An existing collection keeps its own until rebuilt (`cadenza rebuild
    /// --replace`).
    #[arg(long, env = "CADENZA_INDEX_QUANTIZATION", default_value_t = cadenza_index::Quantization::default())]
    pub index_quantization: cadenza_index::Quantization,
}

impl Default for EdgeArgs {
    fn default() -> Self {
        EdgeArgs {
            index_cache_mb: cadenza_index::EdgeOptions::DEFAULT_CACHE_MB,
            index_quantization: cadenza_index::Quantization::default(),
        }
    }
}

impl EdgeArgs {
    /// The index settings these flags ask for.
    pub fn options(&self) -> cadenza_index::EdgeOptions {
        cadenza_index::EdgeOptions::cache_mb(self.index_cache_mb)
            .quantization(self.index_quantization)
    }
}

impl IndexArgs {
    /// True when the index is shared between processes (a Qdrant server).
    pub fn is_shared(&self) -> bool {
        self.qdrant_url.is_some()
    }

    /// Open the index: a Qdrant server if configured, else an edge index in `data_dir/index`.
    pub async fn open(
        &self,
        data_dir: &Path,
    ) -> anyhow::Result<Arc<dyn cadenza_index::VectorIndex>> {
        match &self.qdrant_url {
            Some(url) => {
                let mut cfg = cadenza_index::QdrantConfig::new(url.clone());
                cfg.api_key = self.qdrant_api_key.clone();
                tracing::info!(url = %url, "vector index: Qdrant server");
                Ok(Arc::new(cadenza_index::QdrantIndex::connect(&cfg)?))
            }
            None => {
                let dir = data_dir.join("index");
                std::fs::create_dir_all(&dir)?;
                tracing::info!(dir = %dir.display(), "vector index: qdrant-edge in process");
                let options = self.edge.options();
                Ok(Arc::new(
                    cadenza_index::EdgeIndex::open_with(&dir, options).await?,
                ))
            }
        }
    }
}

/// This replica's name, for consumer groups of its own (a process-local index must see every
/// event, so replicas must not share a group): the configured id, else `$HOSTNAME` (the pod
/// name in Kubernetes), else `local`.
pub fn instance_id(configured: Option<&str>) -> String {
    configured
        .map(str::to_owned)
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// Every topic cadenza uses, with `partitions` each.
pub fn topic_specs(partitions: i32) -> Vec<cadenza_bus::TopicSpec> {
    cadenza_proto::topics::ALL
        .iter()
        .map(|t| cadenza_bus::TopicSpec::new(*t, partitions))
        .collect()
}

/// Report every configuration problem at once and exit 64 (EX_USAGE) if there are any.
pub fn exit_on_problems(problems: Vec<String>) {
    if problems.is_empty() {
        return;
    }
    for p in &problems {
        eprintln!("configuration error: {p}");
    }
    std::process::exit(64);
}
