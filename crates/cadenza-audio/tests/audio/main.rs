//! Decoding real files written to disk: good audio in every layout we claim, and the
//! bad-input matrix — each case must give its own typed error, never a panic.

mod corpus;
mod fuzz_regressions;
mod isolate;
mod wav;

use cadenza_audio::{AudioError, Limits, MelFrontEnd, decode_bytes, decode_file, load_for_model};
use wav::{Format, write_wav};

fn tone(rate: u32, secs: f64, channels: usize) -> Vec<f32> {
    let n = (rate as f64 * secs) as usize;
    (0..n * channels)
        .map(|i| {
            let (t, c) = (i / channels, i % channels);
            0.3 * (2.0 * std::f64::consts::PI * 440.0 * (c + 1) as f64 * t as f64 / rate as f64)
                .sin() as f32
        })
        .collect()
}

fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn pcm16_mono_roundtrip_is_exact_to_quantisation() {
    let dir = tempfile::tempdir().unwrap();
    let x = tone(16_000, 4.0, 1);
    let p = file(&dir, "a.wav", &write_wav(&x, 16_000, 1, Format::Pcm16));
    let d = decode_file(&p, &Limits::default()).unwrap();
    assert_eq!(
        (d.sample_rate, d.source_channels, d.samples.len()),
        (16_000, 1, x.len())
    );
    let err = d
        .samples
        .iter()
        .zip(&x)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err <= 1.0 / 32768.0, "max error {err}");
}

#[test]
fn stereo_is_averaged_and_resampled_to_16k() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        &dir,
        "s.wav",
        &write_wav(&tone(44_100, 4.0, 2), 44_100, 2, Format::Float32),
    );
    let d = load_for_model(&p, &Limits::default()).unwrap();
    assert_eq!(
        (d.sample_rate, d.source_channels, d.source_sample_rate),
        (16_000, 2, 44_100)
    );
    assert!(
        (d.duration_s() - 4.0).abs() < 0.01,
        "duration {}",
        d.duration_s()
    );
    assert!(
        MelFrontEnd::default()
            .patches_from_samples(&d.samples)
            .unwrap()
            .n_patches
            == 1
    );
}

#[test]
fn multichannel_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        &dir,
        "m.wav",
        &write_wav(&tone(48_000, 3.5, 6), 48_000, 6, Format::Pcm16),
    );
    let d = decode_file(&p, &Limits::default()).unwrap();
    assert_eq!(d.source_channels, 6);
}

#[test]
fn the_extension_is_only_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        &dir,
        "really-a-wav.mp3",
        &write_wav(&tone(16_000, 3.5, 1), 16_000, 1, Format::Pcm16),
    );
    assert!(decode_file(&p, &Limits::default()).is_ok());
}

// ---- the bad-input matrix -------------------------------------------------------------

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "empty.wav", b"");
    assert!(matches!(
        decode_file(&p, &Limits::default()),
        Err(AudioError::Empty)
    ));
}

#[test]
fn missing_file() {
    let err = decode_file(
        std::path::Path::new("/nonexistent/x.wav"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, AudioError::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/x.wav"));
}

#[test]
fn random_bytes_with_an_audio_extension() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..50_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for ext in ["wav", "mp3", "flac", "ogg"] {
        let p = file(&dir, &format!("noise.{ext}"), &noise);
        let err = decode_file(&p, &Limits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                AudioError::UnrecognisedFormat { .. } | AudioError::Corrupt { .. }
            ),
            "{ext}: {err:?}"
        );
    }
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = write_wav(&tone(16_000, 10.0, 1), 16_000, 1, Format::Pcm16);
    let p = file(&dir, "cut.wav", &bytes[..bytes.len() / 2]);
    let err = decode_file(&p, &Limits::default()).unwrap_err();
    match err {
        AudioError::Truncated {
            expected_s,
            decoded_s,
        } => {
            assert!(
                (expected_s - 10.0).abs() < 0.01 && (decoded_s - 5.0).abs() < 0.1,
                "{err}"
            )
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn header_only() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = write_wav(&tone(16_000, 10.0, 1), 16_000, 1, Format::Pcm16);
    let p = file(&dir, "hdr.wav", &bytes[..44]);
    assert!(decode_file(&p, &Limits::default()).is_err());
}

#[test]
fn shorter_than_one_patch() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        &dir,
        "short.wav",
        &write_wav(&tone(16_000, 2.0, 1), 16_000, 1, Format::Pcm16),
    );
    let err = decode_file(&p, &Limits::default()).unwrap_err();
    assert!(matches!(err, AudioError::TooShort { .. }), "{err:?}");
    assert!(err.to_string().contains("shorter than one"), "{err}");
}

#[test]
fn over_the_duration_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        &dir,
        "long.wav",
        &write_wav(&tone(16_000, 12.0, 1), 16_000, 1, Format::Pcm16),
    );
    let limits = Limits {
        max_duration_s: 10.0,
        ..Limits::default()
    };
    assert!(matches!(
        decode_file(&p, &limits),
        Err(AudioError::TooLong { .. })
    ));
}

#[test]
fn over_the_size_limit() {
    let bytes = write_wav(&tone(16_000, 4.0, 1), 16_000, 1, Format::Pcm16);
    let limits = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let err = decode_bytes(bytes, Some("wav"), &limits).unwrap_err();
    assert!(
        matches!(err, AudioError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
}

#[test]
fn extreme_sample_rates() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [1_000u32, 1_000_000] {
        let p = file(
            &dir,
            "r.wav",
            &write_wav(&tone(rate, 4.0, 1), rate, 1, Format::Pcm16),
        );
        let err = decode_file(&p, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, AudioError::BadSampleRate { .. }),
            "{rate}: {err:?}"
        );
    }
}

#[test]
fn nan_and_inf_samples_in_float_wav() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = tone(16_000, 4.0, 1);
    x[16_000] = f32::NAN;
    x[20_000] = f32::INFINITY;
    let p = file(&dir, "nan.wav", &write_wav(&x, 16_000, 1, Format::Float32));
    match decode_file(&p, &Limits::default()).unwrap_err() {
        AudioError::NonFiniteSamples { count, first_at_s } => {
            assert_eq!(count, 2);
            assert!((first_at_s - 1.0).abs() < 1e-9);
        }
        other => panic!("expected NonFiniteSamples, got {other:?}"),
    }
}

#[test]
fn every_error_has_a_stable_kind() {
    let kinds = [
        AudioError::Empty.kind(),
        AudioError::TooShort {
            duration_s: 1.0,
            min_s: 3.0,
        }
        .kind(),
    ];
    assert_eq!(kinds, ["empty", "too_short"]);
}
