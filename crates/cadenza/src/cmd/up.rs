//! `cadenza up`: the four services in one process on embedded defaults — the in-process event
//! log instead of Kafka, Qdrant's engine in process (qdrant-edge) instead of a Qdrant server,
//! blobs on the local disk. The same service code as the distributed deployment: only the
//! wiring differs (one shared index, so nothing needs materialising).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use cadenza_bus::{EventBus, LogBus};
use cadenza_core::StateConfig;
use cadenza_feature_extraction::Extractor;
use cadenza_index::{EdgeIndex, VectorIndex};
use cadenza_ingest::{IngestOptions, IngestService};
use cadenza_model::{Embedder, EmbedderOptions, ModelOptions};
use cadenza_ranking::{Ranking, RankingOptions};
use cadenza_session_aggregation::Aggregator;
use cadenza_svc::catalog::{tracks_spec, users_spec};
use cadenza_svc::grpc::ServerArgs;
use cadenza_svc::{BlobStore, Shutdown, metrics};
use clap::Args;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Where everything is kept: the event log (`bus/`), the index (`index/`), the audio
    /// (`blobs/`). Restarting on the same directory resumes where it stopped.
    #[arg(long, env = "CADENZA_DATA_DIR", default_value = "data/up")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Prometheus metrics address (`/metrics`); `off` to disable.
    #[arg(long, env = "CADENZA_METRICS_ADDR", default_value = "127.0.0.1:9090")]
    pub metrics_addr: String,
    /// Embedding model (see `cadenza models`).
    #[arg(long, env = "CADENZA_MODEL", default_value = cadenza_model::DEFAULT_MODEL)]
    pub model: String,
    /// Folder of trained models (`cadenza train --out`) served as extra strategies
    /// (shallow, bert4rec, bert4rec_pop).
    #[arg(long, env = "CADENZA_MODELS_DIR")]
    pub models: Option<std::path::PathBuf>,
    /// ONNX Runtime threads for feature extraction.
    #[arg(long, env = "CADENZA_MODEL_THREADS", default_value_t = 2)]
    pub threads: usize,
    /// Directories `IngestPath` may read (comma-separated). None: ingest by path is off.
    #[arg(long, env = "CADENZA_INGEST_ROOTS", value_delimiter = ',')]
    pub allow_path: Vec<PathBuf>,
    /// Inactivity gap that closes a listening session, in seconds.
    #[arg(long, env = "CADENZA_SESSION_GAP_S", default_value_t = 1800)]
    pub session_gap_s: u64,
    /// HNSW beam width of Recommend's candidate searches: lower is faster and less exact
    /// (BENCHMARKS.md); at least the number of candidates asked for.
    #[arg(long, env = "CADENZA_SEARCH_EF", default_value_t = cadenza_ranking::DEFAULT_SEARCH_EF)]
    pub search_ef: usize,
    #[command(flatten)]
    pub edge: cadenza_svc::wiring::EdgeArgs,
    #[command(flatten)]
    pub decoder: cadenza_ingest::DecoderArgs,
}

impl UpArgs {
    /// Defaults for an in-process system on `addr` with its state in `data_dir`.
    pub fn local(data_dir: PathBuf, addr: SocketAddr) -> Self {
        UpArgs {
            data_dir,
            server: ServerArgs::on(addr),
            metrics_addr: "off".into(),
            model: cadenza_model::DEFAULT_MODEL.into(),
            models: None,
            threads: 2,
            allow_path: Vec::new(),
            session_gap_s: 1800,
            search_ef: cadenza_ranking::DEFAULT_SEARCH_EF,
            edge: Default::default(),
            decoder: cadenza_ingest::DecoderArgs::default(),
        }
    }
}

/// A running system.
#[derive(Debug)]
pub struct System {
    /// Where the gRPC API listens (ingest, recommender, catalogue, health, reflection).
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub index: Arc<dyn VectorIndex>,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl System {
    /// Start everything; returns once the API is listening.
    pub async fn start(args: &UpArgs) -> anyhow::Result<System> {
        cadenza_svc::wiring::exit_on_problems(args.server.problems());
        let shutdown = Shutdown::new();
        if args.metrics_addr != "off" {
            let addr: SocketAddr = args
                .metrics_addr
                .parse()
                .map_err(|e| anyhow::anyhow!("--metrics-addr {}: {e}", args.metrics_addr))?;
            metrics::serve(addr, shutdown.clone()).await?;
        }
        std::fs::create_dir_all(&args.data_dir)?;
        let embedder = Arc::new(Embedder::new(
            &args.model,
            EmbedderOptions {
                model: ModelOptions {
                    intra_threads: args.threads,
                    ..Default::default()
                },
                ..Default::default()
            },
        )?);
        let dim = embedder.model().spec().embedding_layer().dim;
        let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(args.data_dir.join("bus")).await?);
        bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
            .await?;
        let index_dir = args.data_dir.join("index");
        std::fs::create_dir_all(&index_dir)?;
        let options = args.edge.options();
        let index: Arc<dyn VectorIndex> =
            Arc::new(EdgeIndex::open_with(&index_dir, options).await?);
        index.ensure_collection(&tracks_spec(dim)).await?;
        index.ensure_collection(&users_spec(dim)).await?;
        let blobs = BlobStore::open(args.data_dir.join("blobs"))?;

        // One decoding worker setting for ingest and feature extraction (located once).
        let isolation = args.decoder.isolation()?;
        let mut tasks = Vec::new();
        let extractor = Extractor {
            bus: bus.clone(),
            index: Some(index.clone()),
            embedder: embedder.clone(),
            blobs: Some(blobs.clone()),
            isolation: isolation.clone(),
        };
        tasks.push((
            "feature-extraction",
            tokio::spawn(extractor.run(shutdown.clone())),
        ));
        let config = StateConfig {
            session_gap_ms: args.session_gap_s.saturating_mul(1000),
            ..StateConfig::default()
        };
        let aggregator = Aggregator::new(bus.clone(), index.clone(), config, dim);
        tasks.push((
            "session-aggregation",
            tokio::spawn(aggregator.run(shutdown.clone())),
        ));

        let ingest = IngestService::new(
            bus.clone(),
            blobs,
            index.clone(),
            IngestOptions {
                allowed_roots: args.allow_path.clone(),
                isolation,
                ..IngestOptions::default()
            },
        );
        let mut ranking = Ranking::new(
            index.clone(),
            RankingOptions {
                model_version: args.model.clone(),
                search_ef: Some(args.search_ef),
                ..RankingOptions::default()
            },
        );
        if let Some(dir) = &args.models {
            ranking = ranking.with_models(cadenza_ranking::Models::load(dir, &args.model)?);
        }
        let routes = cadenza_ranking::add_to(ingest.routes(&args.server), ranking, &args.server);
        let addr = cadenza_svc::grpc::serve(&args.server, routes, shutdown.clone()).await?;
        Ok(System {
            addr,
            shutdown,
            index,
            tasks,
        })
    }

    /// Stop: the API drains, consumers commit what they finished, the index is flushed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        let mut failed = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!("{name} stopped with an error: {e:#}");
                    failed.get_or_insert(e);
                }
                Err(e) => {
                    tracing::error!("{name} panicked: {e}");
                }
            }
        }
        self.index.flush().await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

pub fn run(args: UpArgs) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let system = System::start(&args).await?;
        system.shutdown.on_signals();
        eprintln!(
            "cadenza is up: gRPC API on {} (ingest, recommender, catalogue, health, reflection), data in {}\n\
             try: cadenza ingest some/folder --server http://{}   then   cadenza recommend --user <id>\n\
             Ctrl-C stops it cleanly.",
            system.addr,
            args.data_dir.display(),
            system.addr
        );
        system.shutdown.wait().await;
        eprintln!("stopping…");
        system.stop().await?;
        Ok(std::process::ExitCode::SUCCESS)
    })
}
