//! `cadenza-session-aggregation`: the session-aggregation service as its own process.

use std::path::PathBuf;

use cadenza_core::StateConfig;
use cadenza_session_aggregation::Aggregator;
use cadenza_svc::catalog::{tracks_spec, users_spec};
use cadenza_svc::wiring::{BusArgs, IndexArgs};
use cadenza_svc::{Shutdown, TelemetryArgs, health, materialise, metrics};
use clap::Parser;

/// Consumes listen events and keeps every listener's state in the index.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    bus: BusArgs,
    #[command(flatten)]
    index: IndexArgs,
    /// Local state (the in-process index and bus when no server is configured).
    #[arg(
        long,
        env = "CADENZA_DATA_DIR",
        default_value = "data/session-aggregation"
    )]
    data_dir: PathBuf,
    /// gRPC health address (probes).
    #[arg(long, env = "CADENZA_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    grpc_addr: std::net::SocketAddr,
    /// Prometheus metrics address.
    #[arg(long, env = "CADENZA_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: std::net::SocketAddr,
    /// Inactivity gap that closes a listening session, in seconds.
    #[arg(long, env = "CADENZA_SESSION_GAP_S", default_value_t = 1800)]
    session_gap_s: u64,
    /// Width of the track vectors (the embedding model's layer).
    #[arg(long, env = "CADENZA_EMBEDDING_DIM", default_value_t = 200)]
    dim: usize,
    /// Name of this replica, used for its own consumer group when it keeps a local index, so
    /// every replica sees every track [default: $HOSTNAME, else "local"].
    #[arg(long, env = "CADENZA_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Listeners' states kept in memory between batches, so a busy listener's state is not
    /// read back from the index after every write (0: always read it).
    #[arg(long, env = "CADENZA_STATE_CACHE", default_value_t = cadenza_session_aggregation::STATE_CACHE)]
    state_cache: usize,
    /// Most listens (already waiting) folded into one index write: a listener with several
    /// listens in a batch is written and announced once.
    #[arg(long, env = "CADENZA_MAX_BATCH", default_value_t = cadenza_session_aggregation::MAX_BATCH)]
    max_batch: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = cadenza_svc::telemetry::init("session-aggregation", &args.telemetry);
    cadenza_svc::wiring::exit_on_problems(args.bus.problems());
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    metrics::serve(args.metrics_addr, shutdown.clone()).await?;
    health::serve(args.grpc_addr, shutdown.clone()).await?;
    let bus = args
        .bus
        .connect("cadenza-session-aggregation", &args.data_dir)
        .await?;
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(args.bus.topic_partitions))
        .await?;
    let index = args.index.open(&args.data_dir).await?;
    index.ensure_collection(&tracks_spec(args.dim)).await?;
    index.ensure_collection(&users_spec(args.dim)).await?;
    let mut materialisers = Vec::new();
    if !args.index.is_shared() {
        // Our own index: keep its tracks in step with the topic (a group per replica).
        let instance = cadenza_svc::wiring::instance_id(args.instance_id.as_deref());
        materialisers.push(materialise::supervise(
            "tracks",
            materialise::tracks(
                bus.clone(),
                index.clone(),
                format!("cadenza-session-aggregation-tracks-{instance}"),
                shutdown.clone(),
            ),
            shutdown.clone(),
        ));
    }
    let config = StateConfig {
        session_gap_ms: args.session_gap_s.saturating_mul(1000),
        ..StateConfig::default()
    };
    let mut agg = Aggregator::new(bus, index, config, args.dim).with_state_cache(args.state_cache);
    agg.max_batch = args.max_batch.max(1);
    agg.run(shutdown).await?;
    anyhow::ensure!(
        materialise::all_clean(materialisers).await,
        "a materialiser failed (logged above)"
    );
    Ok(())
}

/// mimalloc: allocation was a fifth of Recommend's time and more of the listen path's under
/// glibc malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
