//! `cadenza-load`: how far a running cadenza scales.
//!
//! * `catalogue` builds a synthetic catalogue of 10k–1M tracks into a `cadenza up` data
//!   directory (index points and the `track.embedded` events behind them), or publishes it to
//!   Kafka for the distributed services;
//! * `users` gives listeners a history through the ingest API, so `Recommend` has state to
//!   rank from;
//! * `grpc` drives `Recommend` open-loop at fixed rates and reports HdrHistogram percentiles,
//!   errors and the achieved rate;
//! * `listens` measures the listen path over Kafka: it publishes listens onto the listen topic
//!   faster than session aggregation can take them and times how fast the consumer group's
//!   committed offsets catch up;
//! * `recall` compares the HNSW index at several beam widths with brute force;
//! * `states` checks that a server (ranking) serves every listener of a `listens` replay with
//!   exactly the listens published (`make soak`).
//!
//! `make loadtest` runs the whole measurement against `cadenza up`; `BENCHMARKS.md` has the
//! figures.

mod catalogue;
mod grpc;
mod listens;
mod recall;
mod states;
mod uploads;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a synthetic catalogue (clustered vectors with metadata) into a data directory or
    /// onto Kafka.
    Catalogue(catalogue::CatalogueArgs),
    /// Give synthetic listeners a history through the ingest API and wait until it is aggregated.
    Users(grpc::UsersArgs),
    /// Open-loop `Recommend` load at one or more fixed rates, with latency percentiles.
    Grpc(grpc::GrpcArgs),
    /// Listen-path throughput over Kafka: publish listens, time the session-aggregation group.
    Listens(listens::ListensArgs),
    /// Recall@k and time per search of the HNSW index at several beam widths (`--search-ef`),
    /// against brute force over the same catalogue.
    Recall(recall::RecallArgs),
    /// After `listens`: every listener's state as served (by ranking) has exactly the listens
    /// published, none lost or doubled.
    States(states::StatesArgs),
    /// Uploads through the ingest API at a fixed rate, each retried until acknowledged, then a
    /// check that ranking serves every acknowledged track (none lost).
    Uploads(uploads::UploadsArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Catalogue(a) => catalogue::run(a),
        Command::Users(a) => grpc::users(a),
        Command::Grpc(a) => grpc::run(a),
        Command::Listens(a) => listens::run(a),
        Command::Recall(a) => recall::run(a),
        Command::States(a) => states::run(a),
        Command::Uploads(a) => uploads::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cadenza-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc, as the servers it measures: the generator shares their cores, so its own
/// allocation is kept cheap too.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
