//! `cadenza embed`: files and folders in, one JSON line per file out.
//!
//! Files are embedded in parallel, one model session per worker. A file that fails is
//! reported (a JSON line with `error`, and a log line) and the others carry on; the exit code
//! is 1 only if some file failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use cadenza_audio::Limits;
use cadenza_model::{Embedder, EmbedderOptions, Embedding, ModelOptions, Timings};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

/// File extensions picked up when walking a folder (explicitly named files are always tried).
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "ogg", "oga", "mp3", "m4a", "mp4", "aac", "aif", "aiff", "caf", "mkv",
    "webm",
];

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Audio files and folders (folders are searched recursively for audio files).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Model name (see `cadenza models`) or path to an exported .onnx file.
    #[arg(long, short, env = "CADENZA_MODEL", default_value = cadenza_model::DEFAULT_MODEL)]
    pub model: String,
    /// Files embedded at once (default: one per CPU core).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// ONNX Runtime threads per file (default 1; raise it when embedding a single long file).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Patches (3 s each) per inference call.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Reject audio longer than this many seconds.
    #[arg(long, default_value_t = 3600.0)]
    pub max_duration: f64,
    /// Reject files larger than this many megabytes.
    #[arg(long, default_value_t = 1024)]
    pub max_size_mb: u64,
    /// How many of the model's tags to report per file.
    #[arg(long, default_value_t = 5)]
    pub top_tags: usize,
    /// Only these output layers (comma separated, e.g. `penultimate,taggram`); default all.
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Also write every patch's outputs (`patches.<layer>`: one row per 3 s patch).
    #[arg(long)]
    pub per_patch: bool,
    /// Write the JSON lines here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        anyhow::bail!(
            "no audio files found under the given paths (looked for: {})",
            AUDIO_EXTENSIONS.join(", ")
        );
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, files.len());
    let options = EmbedderOptions {
        model: ModelOptions {
            intra_threads: args.threads,
            batch_size: args.batch_size,
        },
        limits: Limits {
            max_bytes: args.max_size_mb.saturating_mul(1 << 20),
            max_duration_s: args.max_duration,
            ..Limits::default()
        },
        top_tags: args.top_tags,
    };
    // One session per worker: sessions are not shared, so workers never wait on each other.
    let embedders: Vec<Embedder> = (0..jobs)
        .map(|_| Embedder::new(&args.model, options.clone()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("loading model `{}`", args.model))?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;

    let out: Box<dyn Write + Send> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let out = Mutex::new(std::io::BufWriter::new(out));
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} embedding [{bar:30}] {pos}/{len} files, {per_sec}, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let totals = Mutex::new((0usize, 0usize, 0.0f64, Timings::default()));
    pool.install(|| {
        files.par_iter().for_each(|path| {
            let embedder = &embedders[rayon::current_thread_index().unwrap_or(0) % jobs];
            let line = match embedder.embed_file(path) {
                Ok(e) => {
                    let mut t = totals.lock().expect("totals");
                    t.0 += 1;
                    t.2 += e.duration_s;
                    t.3 += e.timings;
                    to_json(path, &e, &args)
                }
                Err(err) => {
                    totals.lock().expect("totals").1 += 1;
                    bar.suspend(|| tracing::warn!(path = %path.display(), kind = err.kind(), "{err}"));
                    json!({"path": path.display().to_string(), "error": err.to_string(), "error_kind": err.kind()})
                }
            };
            let mut w = out.lock().expect("output");
            // A closed pipe (e.g. `| head`) is not an error worth a panic; stop writing.
            let _ = writeln!(w, "{line}");
            bar.inc(1);
        });
    });
    bar.finish_and_clear();
    out.into_inner().expect("output").flush()?;

    let (ok, failed, audio_s, t) = totals.into_inner().expect("totals");
    let wall = started.elapsed().as_secs_f64();
    tracing::info!(
        ok,
        failed,
        audio_s = format!("{audio_s:.1}"),
        wall_s = format!("{wall:.2}"),
        x_realtime = format!("{:.0}", audio_s / wall.max(1e-9)),
        decode_s = format!("{:.2}", t.decode.as_secs_f64()),
        resample_s = format!("{:.2}", t.resample.as_secs_f64()),
        mel_s = format!("{:.2}", t.mel.as_secs_f64()),
        model_s = format!("{:.2}", t.model.as_secs_f64()),
        "embedded {ok} of {} files ({audio_s:.0} s of audio) in {wall:.1} s",
        ok + failed
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn to_json(path: &Path, e: &Embedding, args: &EmbedArgs) -> Value {
    let wanted = |name: &str| args.layers.is_empty() || args.layers.iter().any(|l| l == name);
    let mut obj = Map::new();
    obj.insert("path".into(), json!(path.display().to_string()));
    obj.insert("model".into(), json!(e.model));
    obj.insert(
        "duration_s".into(),
        json!((e.duration_s * 1000.0).round() / 1000.0),
    );
    obj.insert("sample_rate".into(), json!(e.source_sample_rate));
    obj.insert("channels".into(), json!(e.source_channels));
    obj.insert("n_patches".into(), json!(e.patches.n_patches));
    for (name, v) in e.pooled.iter().filter(|(n, _)| wanted(n)) {
        obj.insert(name.clone(), json!(v));
    }
    obj.insert(
        "top_tags".into(),
        Value::Array(
            e.top_tags
                .iter()
                .map(|(t, s)| json!({"tag": t, "score": s}))
                .collect(),
        ),
    );
    if args.per_patch {
        let patches: Map<String, Value> = e
            .patches
            .layers
            .iter()
            .filter(|(n, _)| wanted(n))
            .map(|(name, data)| {
                let dim = data.len() / e.patches.n_patches.max(1);
                (
                    name.clone(),
                    Value::Array(data.chunks(dim).map(|r| json!(r)).collect()),
                )
            })
            .collect();
        obj.insert("patches".into(), Value::Object(patches));
    }
    Value::Object(obj)
}

/// Expand folders into the audio files below them (sorted, so runs are reproducible).
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(p)
                .follow_links(true)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_file() && is_audio(e.path()))
                .map(|e| e.into_path())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            // Named files are always tried: a missing one is reported like any failing file.
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn is_audio(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}
