//! `cadenza-decode`: the isolated decoding worker (see `cadenza_audio::isolate`). Decodes one
//! file under memory and CPU-time limits it sets on itself first, and prints one JSON line:
//! `{"ok": {…probe…}}` or `{"error": {"kind", "message"}}`; with `--samples OUT` it also
//! writes the decoded mono samples to OUT (little-endian `f32`). Services start it; people
//! rarely need to.
//!
//! ```text
//! cadenza-decode FILE [--limits JSON] [--cpu-s S] [--memory-bytes B] [--samples OUT]
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use cadenza_audio::isolate::Report;
use cadenza_audio::{Limits, Probe, decode_file};
use rlimit::Resource;

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "cadenza-decode: {problem}\nusage: cadenza-decode FILE [--limits JSON] [--cpu-s S] \
         [--memory-bytes B] [--samples OUT]   (the file's extension is a hint; the content \
         decides)"
    );
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let mut file = None;
    let mut limits = Limits::default();
    let (mut cpu_s, mut memory_bytes) = (None::<u64>, None::<u64>);
    let mut samples_out = None::<PathBuf>;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed: Result<(), String> = match a.as_str() {
            "--limits" => value("--limits").and_then(|v| {
                limits = serde_json::from_str(&v).map_err(|e| format!("--limits: {e}"))?;
                Ok(())
            }),
            "--cpu-s" => value("--cpu-s").and_then(|v| {
                cpu_s = Some(v.parse().map_err(|e| format!("--cpu-s: {e}"))?);
                Ok(())
            }),
            "--memory-bytes" => value("--memory-bytes").and_then(|v| {
                memory_bytes = Some(v.parse().map_err(|e| format!("--memory-bytes: {e}"))?);
                Ok(())
            }),
            "--samples" => value("--samples").map(|v| samples_out = Some(PathBuf::from(v))),
            "-h" | "--help" => return usage("decodes one audio file in isolation"),
            f if !f.starts_with("--") && file.is_none() => {
                file = Some(PathBuf::from(f));
                Ok(())
            }
            other => Err(format!("unexpected argument {other:?}")),
        };
        if let Err(problem) = parsed {
            return usage(&problem);
        }
    }
    let Some(file) = file else {
        return usage("no file given");
    };
    // Limits first, before a byte of the file is read.
    if let Some(s) = cpu_s
        && let Err(e) = rlimit::setrlimit(Resource::CPU, s, s.saturating_add(1))
    {
        eprintln!("cadenza-decode: cannot set the CPU limit: {e}");
        return ExitCode::from(70);
    }
    if let Some(b) = memory_bytes
        && let Err(e) = rlimit::setrlimit(Resource::AS, b, b)
    {
        eprintln!("cadenza-decode: cannot set the memory limit: {e}");
        return ExitCode::from(70);
    }
    let report = match decode_file(&file, &limits) {
        Ok(d) => {
            if let Some(out) = &samples_out {
                // Streamed: a byte copy of the whole track would double what the worker needs
                // under its memory limit.
                let written = std::fs::File::create(out).and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    for x in &d.samples {
                        w.write_all(&x.to_le_bytes())?;
                    }
                    w.flush()
                });
                if let Err(e) = written {
                    eprintln!("cadenza-decode: cannot write {}: {e}", out.display());
                    return ExitCode::from(74);
                }
            }
            Report::Ok(Probe::of(&d))
        }
        Err(e) => Report::Error {
            kind: e.kind().to_owned(),
            message: e.to_string(),
        },
    };
    match serde_json::to_string(&report) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cadenza-decode: {e}");
            ExitCode::from(70)
        }
    }
}
