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
    /// Embedding model name reported with every reply.
    #[arg(long, env = "CADENZA_MODEL", default_value = "MTT_musicnn")]
    model: String,
    /// Most tracks one request may ask for.
    #[arg(long, env = "CADENZA_MAX_K", default_value_t = 100)]
    max_k: usize,
    /// Name of this replica: its own consumer groups when it keeps a local index.
    #[arg(long, env = "CADENZA_INSTANCE_ID", default_value = "local")]
    instance_id: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = cadenza_svc::telemetry::init("ranking", &args.telemetry);
    let mut problems = args.bus.problems();
    problems.extend(args.server.problems());
    cadenza_svc::wiring::exit_on_problems(problems);
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    metrics::serve(args.metrics_addr, shutdown.clone()).await?;
    let index = args.index.open(&args.data_dir).await?;
    index.ensure_collection(&tracks_spec(args.dim)).await?;
    index.ensure_collection(&users_spec(args.dim)).await?;
    if !args.index.is_shared() {
        // This replica's own index: every replica reads every event (its own groups).
        let bus = args.bus.connect("cadenza-ranking", &args.data_dir).await?;
        bus.ensure_topics(&cadenza_svc::wiring::topic_specs(args.bus.topic_partitions))
            .await?;
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let tracks = leak(format!("cadenza-ranking-tracks-{}", args.instance_id));
        let users = leak(format!("cadenza-ranking-users-{}", args.instance_id));
        tokio::spawn(materialise::tracks(
            bus.clone(),
            index.clone(),
            tracks,
            shutdown.clone(),
        ));
        tokio::spawn(materialise::users(
            bus,
            index.clone(),
            users,
            shutdown.clone(),
        ));
    }
    let ranking = Ranking::new(
        index,
        RankingOptions {
            max_k: args.max_k,
            model_version: args.model,
            ..RankingOptions::default()
        },
    );
    cadenza_svc::grpc::serve(
        &args.server,
        cadenza_ranking::routes(ranking, &args.server),
        shutdown.clone(),
    )
    .await?;
    shutdown.wait().await;
    tracing::info!("ranking stopped");
    Ok(())
}
