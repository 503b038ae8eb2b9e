//! Bounded mutation fuzzing of what cadenza reads from the outside: audio files (decode,
//! resample, log-mel, patches) and event payloads (every topic's protobuf, then the checks and
//! conversions the consumers apply). `make fuzz` runs it; any panic or an input that takes
//! longer than `--hang-s` is saved under `--artifacts` and the run fails, so the file can
//! become a regression test.
//!
//! This is a random-mutation fuzzer without coverage guidance (`make fuzz-mutation`); the
//! coverage-guided one is cargo-fuzz, `fuzz/` (`make fuzz`), which takes its starting corpus
//! from here (`--write-seeds`). Seeds are the parity
//! fixtures (WAV, FLAC, Ogg Vorbis, MP3) and valid events; mutations flip bits, overwrite,
//! insert, delete, truncate, splice and set "interesting" integers, a few at a time.
//!
//! ```text
//! cargo run --release -p cadenza --example fuzz -- --target audio --secs 60
//! cargo run --release -p cadenza --example fuzz -- --target events --secs 60
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cadenza_audio::{Limits, MelConfig, MelFrontEnd};
use cadenza_proto::Message as _;
use cadenza_proto::v1::{
    ListenRecorded, TrackEmbedded, TrackIngested, TrackMetadata, UserStateUpdated,
};
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Audio,
    Events,
}

/// Mutation fuzzing of cadenza's audio front end and event decoding, for a bounded time.
#[derive(Debug, Parser)]
struct Args {
    /// What to fuzz.
    #[arg(long, value_enum)]
    target: Target,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Random seed (printed; pass it again to repeat a run).
    #[arg(long)]
    seed: Option<u64>,
    /// An input taking longer than this is reported as a hang.
    #[arg(long, default_value_t = 10)]
    hang_s: u64,
    /// Where failing inputs are written.
    #[arg(long, default_value = "target/fuzz-artifacts")]
    artifacts: PathBuf,
    /// Run these saved inputs once each, panics not caught (to see the backtrace), instead
    /// of fuzzing.
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
    /// Write the seed inputs into this folder and stop: the starting corpus of the cargo-fuzz
    /// target (`fuzz/`, `make fuzz`). Audio seeds get the one-byte extension hint those
    /// targets read first.
    #[arg(long)]
    write_seeds: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let mut rng = StdRng::seed_from_u64(seed);
    let root = repo_root();
    let seeds: Vec<(String, Vec<u8>)> = match args.target {
        Target::Audio => [
            "clip16k_mono.wav",
            "clip44k_stereo.flac",
            "clip44k_stereo.ogg",
            "clip44k_stereo.mp3",
        ]
        .iter()
        .map(|n| {
            let p = root.join("tests/fixtures/parity").join(n);
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("seed {}: {e}", p.display()));
            (n.rsplit('.').next().unwrap_or("").to_owned(), bytes)
        })
        .collect(),
        Target::Events => event_seeds(),
    };
    // Small limits keep each run short; the decoder's own limit checks are part of what is
    // being fuzzed.
    let limits = Limits {
        max_duration_s: 60.0,
        ..Limits::default()
    };
    let front = MelFrontEnd::new(MelConfig::default());
    if let Some(dir) = &args.write_seeds {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (i, (ext, bytes)) in seeds.iter().enumerate() {
            // fuzz/fuzz_targets/audio_front_end.rs: HINTS = wav, flac, ogg, mp3, m4a, "".
            let mut input = Vec::with_capacity(bytes.len() + 1);
            if args.target == Target::Audio {
                let hint = ["wav", "flac", "ogg", "mp3"].iter().position(|h| h == ext);
                input.push(hint.map_or(5, |h| h as u8));
            }
            input.extend_from_slice(bytes);
            std::fs::write(dir.join(format!("seed-{i}.{ext}")), input).expect("seed written");
        }
        eprintln!("{} seeds written to {}", seeds.len(), dir.display());
        return std::process::ExitCode::SUCCESS;
    }
    if !args.replay.is_empty() {
        for path in &args.replay {
            let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let outcome = match args.target {
                Target::Audio => audio(&input, ext, &limits, &front),
                Target::Events => events(&input),
            };
            println!("{}: {outcome}", path.display());
        }
        return std::process::ExitCode::SUCCESS;
    }
    // Silence the default hook: a panic is caught, saved and reported below.
    std::panic::set_hook(Box::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let hang = Duration::from_secs(args.hang_s);
    let (mut runs, mut failures, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    eprintln!(
        "fuzzing {:?} for {} s, seed {seed} ({} seed inputs)",
        args.target,
        args.secs,
        seeds.len()
    );
    while Instant::now() < deadline {
        let (ext, base) = &seeds[rng.random_range(0..seeds.len())];
        let other = &seeds[rng.random_range(0..seeds.len())].1;
        let input = mutate(base, other, &mut rng);
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| match args.target {
            Target::Audio => audio(&input, ext, &limits, &front),
            Target::Events => events(&input),
        }));
        let took = t0.elapsed();
        slowest = slowest.max(took);
        runs += 1;
        let failure = match result {
            Ok(outcome) => {
                *outcomes.entry(outcome).or_default() += 1;
                (took > hang).then(|| format!("hang ({took:?})"))
            }
            Err(panic) => Some(format!(
                "panic: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            )),
        };
        if let Some(what) = failure {
            failures += 1;
            std::fs::create_dir_all(&args.artifacts).ok();
            let path = args
                .artifacts
                .join(format!("{:?}-{seed}-{runs}.{ext}", args.target).to_lowercase());
            std::fs::write(&path, &input).ok();
            eprintln!("FAILURE {what}; input saved to {}", path.display());
        }
    }
    eprintln!(
        "{runs} inputs in {} s ({:.0}/s), slowest {slowest:?}, {failures} failures",
        args.secs,
        runs as f64 / args.secs.max(1) as f64
    );
    for (outcome, n) in &outcomes {
        eprintln!("  {n:>8}  {outcome}");
    }
    if failures == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// The repository root (this example lives in crates/cadenza/examples).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The whole audio path up to the model's input; the outcome is the error kind or "ok".
fn audio(input: &[u8], ext: &str, limits: &Limits, front: &MelFrontEnd) -> String {
    let decoded = match cadenza_audio::decode_bytes(input.to_vec(), Some(ext), limits) {
        Ok(d) => d,
        Err(e) => return format!("audio error: {}", e.kind()),
    };
    let at_16k = match cadenza_audio::to_model_rate(decoded) {
        Ok(d) => d,
        Err(e) => return format!("audio error: {}", e.kind()),
    };
    match front.patches_from_samples(&at_16k.samples) {
        Ok(p) => {
            assert!(
                p.data.iter().all(|x| x.is_finite()),
                "a non-finite log-mel value"
            );
            "ok".to_owned()
        }
        Err(e) => format!("audio error: {}", e.kind()),
    }
}

/// Every topic's payload decoded as every event type, then through what consumers do.
fn events(input: &[u8]) -> String {
    let mut ok = Vec::new();
    if let Ok(l) = ListenRecorded::decode(input) {
        ok.push("listen");
        if let Ok(listen) = cadenza_session_aggregation::to_listen(&l, 1_800_000_000_000) {
            assert!(listen.play_fraction.is_finite());
        }
    }
    if let Ok(e) = TrackEmbedded::decode(input) {
        ok.push("embedded");
        let _ = cadenza_svc::catalog::track_point(&e);
    }
    if let Ok(e) = UserStateUpdated::decode(input) {
        ok.push("user-state");
        if let Some(p) = cadenza_svc::catalog::user_point(&e) {
            let _ = cadenza_session_aggregation::state_of(&p.payload);
        }
    }
    if TrackIngested::decode(input).is_ok() {
        ok.push("ingested");
    }
    if ok.is_empty() {
        "rejected by every decoder".to_owned()
    } else {
        format!("decoded as {}", ok.join("+"))
    }
}

fn event_seeds() -> Vec<(String, Vec<u8>)> {
    let listen = ListenRecorded {
        event_id: "e-1".into(),
        user_id: "ana".into(),
        track_id: "t-1".into(),
        timestamp_ms: 1_700_000_000_000,
        play_fraction: 0.8,
        skipped: false,
        session_hint: String::new(),
    };
    let embedded = TrackEmbedded {
        track_id: "t-1".into(),
        model: "MTT_musicnn".into(),
        vector: (0..200).map(|i| i as f32 / 200.0).collect(),
        metadata: Some(TrackMetadata {
            title: "Partita".into(),
            composer: "Bach".into(),
            tempo_bpm: 96.0,
            ..Default::default()
        }),
        duration_s: 30.0,
        ..Default::default()
    };
    let state = UserStateUpdated {
        user_id: "ana".into(),
        listen_count: 1,
        last_event_id: "e-1".into(),
        state_json: br#"{"vector":[1.0,0.0],"payload":{"user_id":"ana","state":{"user":"ana","listen_count":1}}}"#.to_vec(),
    };
    vec![
        ("bin".into(), listen.encode_to_vec()),
        ("bin".into(), embedded.encode_to_vec()),
        ("bin".into(), state.encode_to_vec()),
    ]
}

/// A few mutations of `base` (sometimes spliced with `other`).
fn mutate(base: &[u8], other: &[u8], rng: &mut StdRng) -> Vec<u8> {
    const INTERESTING: [u32; 10] = [
        0,
        1,
        0x7f,
        0x80,
        0xff,
        0x7fff,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
    ];
    let mut v = base.to_vec();
    for _ in 0..rng.random_range(1..=6) {
        if v.is_empty() {
            v.push(rng.random());
            continue;
        }
        // Most of an audio file's structure is in its first bytes: aim there half the time.
        let pos = if rng.random_bool(0.5) {
            rng.random_range(0..v.len().min(256))
        } else {
            rng.random_range(0..v.len())
        };
        match rng.random_range(0..7) {
            0 => v[pos] ^= 1u8 << rng.random_range(0..8u32),
            1 => v[pos] = rng.random(),
            2 => {
                let n = rng.random_range(1..=16);
                for _ in 0..n {
                    v.insert(pos, rng.random());
                }
            }
            3 => {
                let end = (pos + rng.random_range(1..=64)).min(v.len());
                v.drain(pos..end);
            }
            4 => v.truncate(pos.max(1)),
            5 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let n = rng.random_range(1..=512).min(other.len() - from);
                let end = (pos + n).min(v.len());
                v.splice(pos..end, other[from..from + n].iter().copied());
            }
            _ => {
                let x = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let bytes = if rng.random_bool(0.5) {
                    x.to_le_bytes()
                } else {
                    x.to_be_bytes()
                };
                for (i, b) in bytes.iter().enumerate() {
                    if let Some(slot) = v.get_mut(pos + i) {
                        *slot = *b;
                    }
                }
            }
        }
    }
    v
}
