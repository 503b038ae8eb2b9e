//! `cadenza`: the one user-facing command of the cadenza recommender.
//!
//! Thin by design: parse flags, set up logging, hand over to a subcommand in [`cmd`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod logging;

/// Content-based music recommendation for archives that have audio but little listening
/// history. Every track is heard by a frozen pretrained model (MusiCNN); listeners become
/// points in the same space; rankers recommend from there.
#[derive(Debug, Parser)]
#[command(
    name = "cadenza",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(flatten)]
    log: logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn audio files (or whole folders) into MusiCNN embeddings, one JSON line per file.
    Embed(cmd::embed::EmbedArgs),
    /// List the models available to `embed` and where they were found.
    Models,
    /// The whole job on embedded defaults: start the system in this process, upload a corpus,
    /// embed it, play a few tracks as a listener and print the recommendations.
    Demo(cmd::demo::DemoArgs),
    /// Run all four services in one process (in-process event log, qdrant-edge index) and
    /// serve the gRPC API until Ctrl-C.
    Up(cmd::up::UpArgs),
    /// Upload audio files or folders to a running cadenza.
    Ingest(cmd::client::IngestArgs),
    /// Record listens of a user.
    Listen(cmd::client::ListenArgs),
    /// Recommend tracks for a user.
    Recommend(cmd::client::RecommendArgs),
    /// Tracks that sound like a given track.
    Similar(cmd::client::SimilarArgs),
    /// Next tracks for a listening session (a radio from the tracks so far).
    Continue(cmd::client::ContinueArgs),
    /// What cadenza knows about a listener.
    State(cmd::client::StateArgs),
    /// Evaluate every ranker on a corpus with synthetic listeners and write the RQ1–RQ4 report.
    Eval(cadenza_eval::cli::EvalArgs),
    /// Replay the evaluation's synthetic listeners into a running cadenza (through the API,
    /// or straight onto Kafka's listen topic) at a target rate.
    Replay(cmd::replay::ReplayArgs),
    /// Train the served models (shallow net, BERT4Rec, BERT4Rec + personal popularity) on a
    /// corpus and write checkpoints for `up --models` / the ranking service.
    Train(cadenza_eval::train::TrainArgs),
    /// Rebuild the index's tracks and listener states from the event log (the embedded log of
    /// `up`, or Kafka), and check them against the live ones.
    Rebuild(cmd::rebuild::RebuildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log);
    let result = match cli.command {
        Command::Embed(args) => cmd::embed::run(args),
        Command::Models => cmd::models::run(),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Up(args) => cmd::up::run(args),
        Command::Ingest(args) => cmd::client::ingest(args),
        Command::Listen(args) => cmd::client::listen(args),
        Command::Recommend(args) => cmd::client::recommend(args),
        Command::Similar(args) => cmd::client::similar(args),
        Command::Continue(args) => cmd::client::continue_session(args),
        Command::State(args) => cmd::client::state(args),
        Command::Eval(args) => cadenza_eval::cli::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Train(args) => cadenza_eval::train::run(args),
        Command::Rebuild(args) => cmd::rebuild::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// mimalloc: allocation was a fifth of Recommend's time and more of the listen path's under
/// glibc malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
