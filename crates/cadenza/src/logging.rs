//! Structured logs on stderr (stdout carries command output such as JSON lines).

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info` or `cadenza=debug,ort=warn`.
    #[arg(
        long,
        global = true,
        env = "CADENZA_LOG",
        default_value = "warn,cadenza=info"
    )]
    pub log: String,
    /// Log line format.
    #[arg(long, global = true, env = "CADENZA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|e| {
        eprintln!(
            "warning: bad --log filter {:?} ({e}); using `info`",
            args.log
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}
