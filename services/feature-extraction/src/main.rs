//! `cadenza-feature-extraction`: the feature-extraction service as its own process.

use std::path::PathBuf;
use std::sync::Arc;

use cadenza_feature_extraction::Extractor;
use cadenza_model::{Embedder, EmbedderOptions, ModelOptions};
use cadenza_svc::catalog::tracks_spec;
use cadenza_svc::wiring::{BusArgs, IndexArgs};
use cadenza_svc::{BlobStore, Shutdown, TelemetryArgs, health, metrics};
use clap::Parser;

/// Embeds every ingested track with the frozen audio model.
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
    decoder: cadenza_svc::decoder::DecoderArgs,
    /// Embedding model (see `cadenza models`).
    #[arg(long, env = "CADENZA_MODEL", default_value = cadenza_model::DEFAULT_MODEL)]
    model: String,
    /// ONNX Runtime threads.
    #[arg(long, env = "CADENZA_MODEL_THREADS", default_value_t = 2)]
    threads: usize,
    /// Local state dir (the in-process bus when no Kafka is configured).
    #[arg(
        long,
        env = "CADENZA_DATA_DIR",
        default_value = "data/feature-extraction"
    )]
    data_dir: PathBuf,
    /// The blob store ingest writes to (mounted read-only here is enough).
    #[arg(long, env = "CADENZA_BLOB_DIR", default_value = "data/blobs")]
    blob_dir: PathBuf,
    /// gRPC health address.
    #[arg(long, env = "CADENZA_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    grpc_addr: std::net::SocketAddr,
    /// Prometheus metrics address.
    #[arg(long, env = "CADENZA_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _guard = cadenza_svc::telemetry::init("feature-extraction", &args.telemetry);
    cadenza_svc::wiring::exit_on_problems(args.bus.problems());
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    metrics::serve(args.metrics_addr, shutdown.clone()).await?;
    health::serve(args.grpc_addr, shutdown.clone()).await?;
    let options = EmbedderOptions {
        model: ModelOptions {
            intra_threads: args.threads,
            ..Default::default()
        },
        ..Default::default()
    };
    let embedder = Arc::new(Embedder::new(&args.model, options)?);
    let bus = args
        .bus
        .connect("cadenza-feature-extraction", &args.data_dir)
        .await?;
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(args.bus.topic_partitions))
        .await?;
    // Only a shared index (a Qdrant server) is written here; otherwise consumers
    // materialise tracks from cadenza.track.embedded.
    let index = if args.index.is_shared() {
        let index = args.index.open(&args.data_dir).await?;
        index
            .ensure_collection(&tracks_spec(embedder.model().spec().embedding_layer().dim))
            .await?;
        Some(index)
    } else {
        None
    };
    Extractor {
        bus,
        index,
        embedder,
        blobs: Some(BlobStore::from_existing(&args.blob_dir)),
        isolation: args.decoder.isolation()?,
    }
    .run(shutdown)
    .await
}

/// mimalloc: allocation was a fifth of Recommend's time and more of the listen path's under
/// glibc malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
