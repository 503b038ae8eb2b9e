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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log);
    let result = match cli.command {
        Command::Embed(args) => cmd::embed::run(args),
        Command::Models => cmd::models::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
