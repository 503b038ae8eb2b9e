//! `make bench-embed`: throughput of the whole path (decode → resample → log-mel → model) on a
//! set of clips, the split of time between stages, and the ratio against the Python `musicnn`
//! reference extractor run on the same clips in the same run.
//!
//! Usage: `cargo bench -p cadenza-model --bench embed -- <folder or files> [--reference <python>]`
//! The reference is skipped (and said so) if no python is given.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use cadenza_model::{Embedder, EmbedderOptions, ModelOptions, Timings};

fn collect(paths: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        let p = PathBuf::from(p);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.extension().is_some_and(|e| {
                        ["flac", "wav", "ogg", "mp3"].contains(&e.to_str().unwrap_or(""))
                    })
                })
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p);
        }
    }
    out
}

struct Run {
    audio_s: f64,
    wall_s: f64,
    timings: Timings,
}

fn run(files: &[PathBuf], workers: usize) -> Run {
    let embedders: Vec<Embedder> = (0..workers)
        .map(|_| {
            Embedder::new(
                "MTT_musicnn",
                EmbedderOptions {
                    model: ModelOptions {
                        intra_threads: 1,
                        batch_size: 32,
                    },
                    ..Default::default()
                },
            )
            .expect("model loads")
        })
        .collect();
    // Warm-up: first inference allocates and optimises; the reference gets a warm run too.
    embedders.iter().for_each(|e| drop(e.embed_file(&files[0])));
    let next = Mutex::new(0usize);
    let totals = Mutex::new((0.0f64, Timings::default()));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for e in &embedders {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(f) = files.get(i) else { break };
                    let emb = e
                        .embed_file(f)
                        .unwrap_or_else(|err| panic!("{}: {err}", f.display()));
                    let mut t = totals.lock().unwrap();
                    t.0 += emb.duration_s;
                    t.1 += emb.timings;
                }
            });
        }
    });
    let wall_s = t0.elapsed().as_secs_f64();
    let (audio_s, timings) = totals.into_inner().unwrap();
    Run {
        audio_s,
        wall_s,
        timings,
    }
}

fn reference(python: &Path, files: &[PathBuf]) -> Option<serde_json::Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/export/bench_reference.py");
    let out = Command::new(python).arg(script).args(files).output().ok()?;
    if !out.status.success() {
        eprintln!("reference failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

fn main() {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let python = args.iter().position(|a| a == "--reference").map(|i| {
        let p = PathBuf::from(args[i + 1].clone());
        args.drain(i..=i + 1);
        p
    });
    let files = collect(&args);
    assert!(
        !files.is_empty(),
        "give a folder of clips (e.g. data/corpus/tiny/audio)"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("clips: {} files", files.len());
    let (mut single_x, mut best_x) = (0.0, 0.0f64);
    for workers in [1, cores] {
        let r = run(&files, workers);
        let x = r.audio_s / r.wall_s;
        if workers == 1 {
            single_x = x;
        }
        best_x = best_x.max(x);
        let t = r.timings;
        let total = (t.decode + t.resample + t.mel + t.model).as_secs_f64();
        let pct = |d: std::time::Duration| 100.0 * d.as_secs_f64() / total;
        println!(
            "rust, {workers} worker(s): {:.0} s of audio in {:.2} s = {x:.0}x realtime | decode {:.1}% resample {:.1}% mel {:.1}% model {:.1}%",
            r.audio_s,
            r.wall_s,
            pct(t.decode),
            pct(t.resample),
            pct(t.mel),
            pct(t.model)
        );
        if workers == cores && cores == 1 {
            break;
        }
    }
    match python.as_deref().and_then(|p| reference(p, &files)) {
        Some(v) => {
            let ref_x = v["x_realtime_warm"].as_f64().unwrap_or(f64::NAN);
            println!(
                "python musicnn reference (warm, TF default threads): {ref_x:.1}x realtime; cold first file {:.1} s",
                v["cold_s"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "ratio vs reference: {:.1}x with 1 worker, {:.1}x using all {cores} cores",
                single_x / ref_x,
                best_x / ref_x
            );
        }
        None => println!(
            "reference: skipped (pass --reference <python of the musicnn venv>; `make bench-embed` does)"
        ),
    }
}
