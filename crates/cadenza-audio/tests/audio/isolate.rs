//! Decoding in the isolated worker (`cadenza-decode`): the same answers as in process, and
//! every way a worker can end — a resource limit, a deadline, a crash — becomes a typed error
//! while the caller carries on.

use std::path::PathBuf;
use std::time::Duration;

use cadenza_audio::{AudioError, Isolation, Limits, decode_file};

use super::wav::{Format, write_wav};
use super::{file, tone};

fn worker() -> Isolation {
    Isolation::new(PathBuf::from(env!("CARGO_BIN_EXE_cadenza-decode")))
}

#[test]
fn the_worker_answers_as_the_in_process_decoder_does() {
    let dir = tempfile::tempdir().unwrap();
    let good = file(
        &dir,
        "good.wav",
        &write_wav(&tone(44_100, 4.0, 2), 44_100, 2, Format::Pcm16),
    );
    let probe = worker().probe_file(&good, &Limits::default()).unwrap();
    let local = decode_file(&good, &Limits::default()).unwrap();
    assert_eq!(probe.sample_rate, local.sample_rate);
    assert_eq!(probe.source_channels, 2);
    assert!(
        (probe.duration_s - local.duration_s()).abs() < 1e-9,
        "{probe:?}"
    );

    // A decoding error comes back with its kind and message.
    let junk = file(&dir, "junk.mp3", &[0x5a; 4096]);
    let err = worker().probe_file(&junk, &Limits::default()).unwrap_err();
    let local = decode_file(&junk, &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), local.kind(), "{err}");
    assert_eq!(err.to_string(), local.to_string());
    // The limits travel to the worker.
    let strict = Limits {
        max_duration_s: 2.0,
        ..Limits::default()
    };
    let err = worker().probe_file(&good, &strict).unwrap_err();
    assert_eq!(err.kind(), "too_long", "{err}");
}

#[test]
fn samples_decoded_in_the_worker_are_the_in_process_ones() {
    let dir = tempfile::tempdir().unwrap();
    let stereo = file(
        &dir,
        "stereo.wav",
        &write_wav(&tone(44_100, 3.0, 2), 44_100, 2, Format::Pcm16),
    );
    let isolated = worker().decode_file(&stereo, &Limits::default()).unwrap();
    assert_eq!(isolated, decode_file(&stereo, &Limits::default()).unwrap());
    // Errors and limits come back as from `probe_file`, and no samples file is left behind.
    let junk = file(&dir, "junk.flac", &[0x00; 2048]);
    let err = worker().decode_file(&junk, &Limits::default()).unwrap_err();
    assert_eq!(
        err.kind(),
        decode_file(&junk, &Limits::default()).unwrap_err().kind()
    );
    let mut iso = worker();
    iso.cpu_s = 1;
    iso.worker = PathBuf::from("/bin/sh");
    let spin = file(&dir, "spin.sh", b"while :; do :; done\n");
    let err = iso.decode_file(&spin, &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "decoder_limit", "{err}");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("cadenza-decode-{}-", std::process::id()))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_decode_that_needs_too_much_memory_is_stopped_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Five minutes at 48 kHz: ~58 MB of decoded samples, over a 48 MiB address space.
    let long = file(
        &dir,
        "long.wav",
        &write_wav(&tone(48_000, 300.0, 1), 48_000, 1, Format::Pcm16),
    );
    let mut iso = worker();
    iso.memory_bytes = 48 << 20;
    let err = iso.probe_file(&long, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            AudioError::DecoderLimit {
                limit: "memory",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "decoder_limit");
    // The same file with the default limits is fine: the limit, not the file, stopped it.
    assert!(worker().probe_file(&long, &Limits::default()).is_ok());
}

#[test]
fn a_worker_that_spins_is_stopped_at_the_cpu_limit() {
    // The CPU limit alone: a worker that only burns CPU (a shell running a busy loop; the
    // "file" it is handed is the script) is stopped by the kernel after 1 s of CPU time, far
    // inside the wall-clock deadline, and the caller is told it was the CPU limit.
    let dir = tempfile::tempdir().unwrap();
    let spin = file(&dir, "spin.sh", b"while :; do :; done\n");
    let mut iso = Isolation::new(PathBuf::from("/bin/sh"));
    iso.cpu_s = 1;
    iso.wall = Duration::from_secs(120);
    let err = iso.probe_file(&spin, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            AudioError::DecoderLimit {
                limit: "CPU time",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "decoder_limit");
    assert!(err.to_string().contains("1 s"), "{err}");
}

#[test]
fn a_decode_past_its_deadline_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let long = file(
        &dir,
        "long.wav",
        &write_wav(&tone(48_000, 300.0, 1), 48_000, 1, Format::Pcm16),
    );
    let mut iso = worker();
    iso.wall = Duration::from_millis(1);
    let err = iso.probe_file(&long, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, AudioError::DecoderLimit { limit: "time", .. }),
        "{err:?}"
    );
}

#[test]
fn a_worker_that_dies_without_a_report_is_a_crash_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let good = file(
        &dir,
        "good.wav",
        &write_wav(&tone(16_000, 4.0, 1), 16_000, 1, Format::Pcm16),
    );
    // `false` exits 1 and prints nothing: what a worker that crashed looks like.
    let iso = Isolation::new(PathBuf::from("/bin/false"));
    let err = iso.probe_file(&good, &Limits::default()).unwrap_err();
    assert_eq!(err.kind(), "decoder_crashed", "{err}");
    let missing = Isolation::new(PathBuf::from("/nonexistent/cadenza-decode"));
    let err = missing.probe_file(&good, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("could not be started"), "{err}");
}
