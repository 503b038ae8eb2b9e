//! Stand-alone `cadenza eval` (the same arguments), so `make eval` works on its own.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "cadenza-eval",
    about = "Run the RQ1–RQ4 experiments and write a dated report"
)]
struct Cli {
    #[command(flatten)]
    args: cadenza_eval::cli::EvalArgs,
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    cadenza_eval::cli::run(Cli::parse().args)
}
