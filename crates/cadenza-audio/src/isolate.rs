//! Decoding in a separate, resource-limited process, so that a hostile file cannot take the
//! service with it.
//!
//! The in-process limits ([`Limits`]: bytes, duration, sample rate, channels, spinning
//! decoders) stop what a file *declares*; a decoder bug that a crafted file triggers — an
//! allocation without bound (Rust aborts the process on allocation failure), an endless loop,
//! a stack overflow — would still abort or hang whoever runs the decoder. The worker binary
//! `cadenza-decode` decodes one file under `RLIMIT_AS` (memory) and `RLIMIT_CPU` (CPU time)
//! that it sets on itself before reading a byte; the parent adds a wall-clock deadline, kills
//! it past that, and turns every way the worker can end into an [`AudioError`]:
//! `decoder_limit` (memory, CPU time, wall time) or `decoder_crashed`, next to the usual
//! decoding errors the worker reports by kind.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{AudioError, DECODE_KINDS, DecodedAudio, Limits, Result};

/// File name of the worker binary.
pub const WORKER: &str = "cadenza-decode";
/// Environment variable naming the worker binary explicitly.
pub const WORKER_ENV: &str = "CADENZA_DECODE_WORKER";

/// What a successful decode found (the samples stay in the worker).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub duration_s: f64,
    pub sample_rate: u32,
    pub source_channels: usize,
    pub source_sample_rate: u32,
}

impl Probe {
    pub fn of(d: &DecodedAudio) -> Probe {
        Probe {
            duration_s: d.duration_s(),
            sample_rate: d.sample_rate,
            source_channels: d.source_channels,
            source_sample_rate: d.source_sample_rate,
        }
    }
}

/// What the worker prints: one JSON line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    Ok(Probe),
    Error { kind: String, message: String },
}

/// How to run the worker, and its resource limits.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub worker: PathBuf,
    /// CPU seconds per file (`RLIMIT_CPU`).
    pub cpu_s: u64,
    /// Address space per file, bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Wall-clock deadline per file.
    pub wall: Duration,
}

impl Isolation {
    /// Defaults generous for an hour of audio (a few hundred MB of samples, seconds of CPU).
    pub fn new(worker: PathBuf) -> Isolation {
        Isolation {
            worker,
            cpu_s: 60,
            memory_bytes: 2 << 30,
            wall: Duration::from_secs(120),
        }
    }

    /// The worker binary: `$CADENZA_DECODE_WORKER`, else `cadenza-decode` next to the running
    /// executable (or one folder up, where cargo puts binaries beside its test executables).
    pub fn locate() -> std::result::Result<PathBuf, String> {
        if let Some(p) = std::env::var_os(WORKER_ENV) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(format!("{WORKER_ENV}={} is not a file", p.display()))
            };
        }
        let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
        let mut looked = Vec::new();
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join(WORKER);
            if p.is_file() {
                return Ok(p);
            }
            looked.push(p.display().to_string());
        }
        Err(format!(
            "the decoding worker `{WORKER}` is not in {} (build it with `cargo build -p \
             cadenza-audio --bins`, or set {WORKER_ENV})",
            looked.join(" or ")
        ))
    }

    /// Decode `path` in a worker process under the limits; what it found, or why not. The
    /// file's extension is the format hint, as for [`crate::decode_file`]. Blocking (call it
    /// from a blocking thread).
    pub fn probe_file(&self, path: &Path, limits: &Limits) -> Result<Probe> {
        self.run(path, limits, None)
    }

    /// Decode `path` in a worker process under the limits and bring the samples back: what
    /// [`crate::decode_file`] gives, without the decoder running in this process. Blocking.
    pub fn decode_file(&self, path: &Path, limits: &Limits) -> Result<DecodedAudio> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let out = std::env::temp_dir().join(format!(
            "cadenza-decode-{}-{}.f32",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.run(path, limits, Some(&out)).and_then(|probe| {
            let unreadable = |e: std::io::Error| AudioError::DecoderCrashed {
                detail: format!("the worker's samples could not be read back: {e}"),
            };
            let expected = (probe.duration_s * f64::from(probe.sample_rate)).round() as usize;
            let file = std::fs::File::open(&out).map_err(unreadable)?;
            let len = file.metadata().map_err(unreadable)?.len();
            if len != expected as u64 * 4 {
                return Err(AudioError::DecoderCrashed {
                    detail: format!("the worker reported {expected} samples and wrote {len} bytes"),
                });
            }
            // Read in blocks straight into the samples: no second copy of the track in bytes.
            let mut samples = Vec::with_capacity(expected);
            let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
            let mut block = [0u8; 1 << 16];
            while samples.len() < expected {
                let want = ((expected - samples.len()) * 4).min(block.len());
                reader.read_exact(&mut block[..want]).map_err(unreadable)?;
                samples.extend(
                    block[..want]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            Ok(DecodedAudio {
                samples,
                sample_rate: probe.sample_rate,
                source_channels: probe.source_channels,
                source_sample_rate: probe.source_sample_rate,
            })
        });
        let _ = std::fs::remove_file(&out);
        result
    }

    fn run(&self, path: &Path, limits: &Limits, samples: Option<&Path>) -> Result<Probe> {
        let limits_json = serde_json::to_string(limits).expect("limits serialise");
        let mut cmd = Command::new(&self.worker);
        cmd.arg(path);
        if let Some(out) = samples {
            cmd.arg("--samples").arg(out);
        }
        cmd.args(["--limits", &limits_json])
            .args(["--cpu-s", &self.cpu_s.to_string()])
            .args(["--memory-bytes", &self.memory_bytes.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| AudioError::DecoderCrashed {
            detail: format!(
                "the decoding worker {} could not be started: {e}",
                self.worker.display()
            ),
        })?;
        // The worker limits itself first thing; the limits are set from here too, so they hold
        // whatever the worker binary does (CPU time already spent counts against the limit,
        // so setting it just after the start loses nothing).
        #[cfg(target_os = "linux")]
        if let Ok(pid) = i32::try_from(child.id()) {
            let cpu = (self.cpu_s, self.cpu_s.saturating_add(1));
            let _ = rlimit::prlimit(pid, rlimit::Resource::CPU, Some(cpu), None);
            let memory = (self.memory_bytes, self.memory_bytes);
            let _ = rlimit::prlimit(pid, rlimit::Resource::AS, Some(memory), None);
        }
        let (mut out, mut err) = (
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        // Read both pipes while waiting, so a chatty worker never blocks on a full pipe.
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.by_ref().take(1 << 20).read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.by_ref().take(1 << 20).read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + self.wall;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    let _ = child.kill();
                    return Err(AudioError::DecoderCrashed {
                        detail: format!("waiting for the decoding worker: {e}"),
                    });
                }
            }
        };
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let Some(status) = status else {
            return Err(AudioError::DecoderLimit {
                limit: "time",
                detail: format!("stopped after {:.1} s", self.wall.as_secs_f64()),
            });
        };
        let last_err = stderr.lines().rev().find(|l| !l.trim().is_empty());
        match status.signal() {
            // SIGXCPU at the soft CPU limit, SIGKILL at the hard one (nobody else kills it).
            Some(24 | 9) => {
                return Err(AudioError::DecoderLimit {
                    limit: "CPU time",
                    detail: format!("{} s", self.cpu_s),
                });
            }
            // Rust aborts on a failed allocation, after saying so.
            Some(6) if stderr.contains("memory allocation of") => {
                return Err(AudioError::DecoderLimit {
                    limit: "memory",
                    detail: format!("{} MiB", self.memory_bytes >> 20),
                });
            }
            Some(sig) => {
                return Err(AudioError::DecoderCrashed {
                    detail: format!(
                        "signal {sig}{}",
                        last_err.map(|l| format!(": {l}")).unwrap_or_default()
                    ),
                });
            }
            None => {}
        }
        let report = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Report>(l).ok());
        match (status.success(), report) {
            (true, Some(Report::Ok(probe))) => Ok(probe),
            (true, Some(Report::Error { kind, message })) => Err(AudioError::Isolated {
                kind: DECODE_KINDS
                    .iter()
                    .find(|k| **k == kind)
                    .copied()
                    .unwrap_or("decoder_crashed"),
                message,
            }),
            _ => Err(AudioError::DecoderCrashed {
                detail: format!(
                    "{status}{}",
                    last_err.map(|l| format!(": {l}")).unwrap_or_default()
                ),
            }),
        }
    }
}
