//! `cadenza-ranking`: the recommender and catalogue API as its own process.

use std::path::PathBuf;

use cadenza_ranking::{Ranking, RankingOptions};
use cadenza_svc::catalog::{tracks_spec, users_spec};
use cadenza_svc::grpc::ServerArgs;
use cadenza_svc::wiring::{BusArgs, IndexArgs};
use cadenza_svc::{Shutdown, TelemetryArgs, materialise, metrics};
use clap::Parser;

/// Serves recommendations, similar tracks, session continuation and catalogue reads over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    bus: BusArgs,
    #[command(flatten)]
    index: IndexArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// Local state (the in-process bus and this replica's index when no server is configured).
    #[arg(long, env = "CADENZA_DATA_DIR", default_value = "data/ranking")]
    data_dir: PathBuf,
    /// Prometheus metrics address.
    #[arg(long, env = "CADENZA_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: std::net::SocketAddr,
    /// Width of the track vectors (the embedding model's layer).
    #[arg(long, env = "CADENZA_EMBEDDING_DIM", default_value_t = 200)]
    dim: usize,
    /// Embedding model (and version) behind the vectors, reported with every reply.
    #[arg(
        long,
        alias = "model",
        env = "CADENZA_MODEL",
        default_value = "MTT_musicnn"
    )]
    model_version: String,
    /// Most tracks one request may ask for.
    #[arg(long, env = "CADENZA_MAX_K", default_value_t = 100)]
    max_k: usize,
    /// Neighbours fetched per query vector before diversifying or merging taste centroids.
    #[arg(long, env = "CADENZA_CANDIDATE_POOL", default_value_t = 200)]
    candidate_pool: usize,
    /// HNSW beam width of candidate searches: lower is faster and less exact (see
    /// BENCHMARKS.md for recall and latency); at least the number of candidates asked for.
    #[arg(long, env = "CADENZA_SEARCH_EF", default_value_t = cadenza_ranking::DEFAULT_SEARCH_EF)]
    search_ef: usize,
    /// Folder of trained models (`cadenza train --out`) to serve as extra strategies
    /// (shallow, bert4rec, bert4rec_pop); none by default.
    #[arg(long, env = "CADENZA_MODELS_DIR")]
    models: Option<PathBuf>,
    /// Name of this replica, used for its own consumer groups when it keeps a local index, so
    /// every replica reads every event [default: $HOSTNAME, else "local"].
    #[arg(long, env = "CADENZA_INSTANCE_ID")]
    instance_id: Option<String>,
}

impl Args {
    /// Settings of this service that are wrong whatever else is configured.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, value) in [
            ("--dim", self.dim),
            ("--max-k", self.max_k),
            ("--candidate-pool", self.candidate_pool),
        ] {
            if value == 0 {
                out.push(format!("{flag}: must be at least 1"));
            }
        }
        out
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = cadenza_svc::telemetry::init("ranking", &args.telemetry);
    let mut problems = args.bus.problems();
    problems.extend(args.server.problems());
    problems.extend(args.problems());
    cadenza_svc::wiring::exit_on_problems(problems);
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    metrics::serve(args.metrics_addr, shutdown.clone()).await?;
    let index = args.index.open(&args.data_dir).await?;
    index.ensure_collection(&tracks_spec(args.dim)).await?;
    index.ensure_collection(&users_spec(args.dim)).await?;
    let mut materialisers = Vec::new();
    if !args.index.is_shared() {
        // This replica's own index: every replica reads every event (its own groups).
        let bus = args.bus.connect("cadenza-ranking", &args.data_dir).await?;
        bus.ensure_topics(&cadenza_svc::wiring::topic_specs(args.bus.topic_partitions))
            .await?;
        let instance = cadenza_svc::wiring::instance_id(args.instance_id.as_deref());
        let tracks = format!("cadenza-ranking-tracks-{instance}");
        let users = format!("cadenza-ranking-users-{instance}");
        tracing::info!(tracks, users, "materialising this replica's index");
        materialisers.push(materialise::supervise(
            "tracks",
            materialise::tracks(bus.clone(), index.clone(), tracks, shutdown.clone()),
            shutdown.clone(),
        ));
        materialisers.push(materialise::supervise(
            "users",
            materialise::users(bus, index.clone(), users, shutdown.clone()),
            shutdown.clone(),
        ));
    }
    let mut ranking = Ranking::new(
        index,
        RankingOptions {
            max_k: args.max_k,
            model_version: args.model_version.clone(),
            candidate_pool: args.candidate_pool,
            search_ef: Some(args.search_ef),
            ..RankingOptions::default()
        },
    );
    if let Some(dir) = &args.models {
        ranking = ranking.with_models(cadenza_ranking::Models::load(dir, &args.model_version)?);
    }
    cadenza_svc::grpc::serve(
        &args.server,
        cadenza_ranking::routes(ranking, &args.server),
        shutdown.clone(),
    )
    .await?;
    shutdown.wait().await;
    let clean = materialise::all_clean(materialisers).await;
    tracing::info!("ranking stopped");
    anyhow::ensure!(clean, "a materialiser failed (logged above)");
    Ok(())
}

/// mimalloc: allocation was a fifth of Recommend's time and more of the listen path's under
/// glibc malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
