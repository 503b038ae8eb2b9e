//! How audio is decoded: in an isolated `cadenza-decode` worker under limits, or in process.

use cadenza_audio::Isolation;

/// Where audio is decoded (uploads by ingest to validate them, tracks by feature extraction
/// to embed them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderMode {
    /// Isolated if the `cadenza-decode` worker is installed next to this binary, else in
    /// process (with a warning).
    Auto,
    /// A `cadenza-decode` worker process per file under the limits: a hostile file cannot
    /// crash or hang the service. Start-up fails if the worker is missing.
    Isolated,
    /// In this process (byte, duration, sample-rate and channel limits still apply).
    InProcess,
}

/// Decoding settings shared by `cadenza-ingest`, `cadenza-feature-extraction` and `cadenza up`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecoderArgs {
    /// Where audio is decoded: `auto` isolates whenever `cadenza-decode` is installed beside
    /// this binary.
    #[arg(long, env = "CADENZA_DECODER", value_enum, default_value = "auto")]
    pub decoder: DecoderMode,
    /// Memory one isolated decode may use, in MiB (the worker's address space).
    #[arg(long, env = "CADENZA_DECODER_MEMORY_MB", default_value_t = 2048)]
    pub decoder_memory_mb: u64,
    /// CPU seconds one isolated decode may use.
    #[arg(long, env = "CADENZA_DECODER_CPU_S", default_value_t = 60)]
    pub decoder_cpu_s: u64,
    /// Wall-clock seconds one isolated decode may take.
    #[arg(long, env = "CADENZA_DECODER_TIMEOUT_S", default_value_t = 120)]
    pub decoder_timeout_s: u64,
}

impl Default for DecoderArgs {
    fn default() -> Self {
        DecoderArgs {
            decoder: DecoderMode::Auto,
            decoder_memory_mb: 2048,
            decoder_cpu_s: 60,
            decoder_timeout_s: 120,
        }
    }
}

impl DecoderArgs {
    /// The isolation these settings ask for (`None`: decode in process).
    pub fn isolation(&self) -> anyhow::Result<Option<Isolation>> {
        let located = match self.decoder {
            DecoderMode::InProcess => return Ok(None),
            _ => Isolation::locate(),
        };
        let worker = match (located, self.decoder) {
            (Ok(w), _) => w,
            (Err(why), DecoderMode::Isolated) => {
                anyhow::bail!("--decoder isolated: {why}; or pass --decoder in-process")
            }
            (Err(why), _) => {
                tracing::warn!("audio is decoded in this process: {why}");
                return Ok(None);
            }
        };
        tracing::info!(
            worker = %worker.display(),
            memory_mb = self.decoder_memory_mb,
            cpu_s = self.decoder_cpu_s,
            "audio is decoded in an isolated worker process"
        );
        Ok(Some(Isolation {
            worker,
            cpu_s: self.decoder_cpu_s.max(1),
            memory_bytes: self.decoder_memory_mb.max(16) << 20,
            wall: std::time::Duration::from_secs(self.decoder_timeout_s.max(1)),
        }))
    }
}
