//! `cadenza-ingest`: the ingest service as its own process.

use std::path::PathBuf;

use cadenza_ingest::{IngestOptions, IngestService};
use cadenza_svc::catalog::tracks_spec;
use cadenza_svc::grpc::ServerArgs;
use cadenza_svc::wiring::{BusArgs, IndexArgs};
use cadenza_svc::{BlobStore, Shutdown, TelemetryArgs, materialise, metrics};
use clap::Parser;

/// Accepts audio uploads and listen events over gRPC and publishes them to the event bus.
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
    #[command(flatten)]
    decoder: cadenza_ingest::DecoderArgs,
    /// Where uploaded audio is stored (content-addressed; shared with feature extraction).
    #[arg(long, env = "CADENZA_BLOB_DIR", default_value = "data/blobs")]
    blob_dir: PathBuf,
    /// Local state (the in-process bus and index when no server is configured).
    #[arg(long, env = "CADENZA_DATA_DIR", default_value = "data/ingest")]
    data_dir: PathBuf,
    /// Prometheus metrics address.
    #[arg(long, env = "CADENZA_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: std::net::SocketAddr,
    /// Largest audio upload accepted, in bytes.
    #[arg(long, env = "CADENZA_MAX_UPLOAD_BYTES", default_value_t = 256 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// Longest audio accepted, in seconds.
    #[arg(long, env = "CADENZA_MAX_DURATION_S", default_value_t = 3600.0)]
    max_duration_s: f64,
    /// Directories `IngestPath` may read (repeat or comma-separate). None: ingest by path is off.
    #[arg(long, env = "CADENZA_INGEST_ROOTS", value_delimiter = ',')]
    allow_path: Vec<PathBuf>,
    /// Width of the track vectors (the embedding model's layer).
    #[arg(long, env = "CADENZA_EMBEDDING_DIM", default_value_t = 200)]
    dim: usize,
    /// Name of this replica, used for its own consumer group when it keeps a local index, so
    /// every replica reads every event [default: $HOSTNAME, else "local"].
    #[arg(long, env = "CADENZA_INSTANCE_ID")]
    instance_id: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = cadenza_svc::telemetry::init("ingest", &args.telemetry);
    let mut problems = args.bus.problems();
    problems.extend(args.server.problems());
    cadenza_svc::wiring::exit_on_problems(problems);
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    metrics::serve(args.metrics_addr, shutdown.clone()).await?;
    let bus = args.bus.connect("cadenza-ingest", &args.data_dir).await?;
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(args.bus.topic_partitions))
        .await?;
    let index = args.index.open(&args.data_dir).await?;
    index.ensure_collection(&tracks_spec(args.dim)).await?;
    let mut materialisers = Vec::new();
    if !args.index.is_shared() {
        // Which tracks exist (to refuse listens of unknown ones) comes from the topic.
        let instance = cadenza_svc::wiring::instance_id(args.instance_id.as_deref());
        materialisers.push(materialise::supervise(
            "tracks",
            materialise::tracks(
                bus.clone(),
                index.clone(),
                format!("cadenza-ingest-tracks-{instance}"),
                shutdown.clone(),
            ),
            shutdown.clone(),
        ));
    }
    let service = IngestService::new(
        bus,
        BlobStore::open(&args.blob_dir)?,
        index,
        IngestOptions {
            max_upload_bytes: args.max_upload_bytes,
            max_duration_s: args.max_duration_s,
            allowed_roots: args.allow_path,
            isolation: args.decoder.isolation()?,
            ..IngestOptions::default()
        },
    );
    cadenza_svc::grpc::serve(&args.server, service.routes(&args.server), shutdown.clone()).await?;
    shutdown.wait().await;
    let clean = materialise::all_clean(materialisers).await;
    tracing::info!("ingest stopped");
    anyhow::ensure!(clean, "a materialiser failed (logged above)");
    Ok(())
}

/// mimalloc: allocation was a fifth of Recommend's time and more of the listen path's under
/// glibc malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
