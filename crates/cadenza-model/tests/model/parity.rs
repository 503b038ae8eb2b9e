use std::path::{Path, PathBuf};

use cadenza_audio::{Limits, MelFrontEnd, decode_file};
use cadenza_model::{Embedder, EmbedderOptions};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/parity")
}

fn manifest() -> Value {
    let p = fixtures().join("manifest.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// A `{"file": ..., "shape": [...]}` entry of raw little-endian f32.
fn read_f32(entry: &Value) -> (Vec<f32>, Vec<usize>) {
    let file = fixtures().join(entry["file"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let shape: Vec<usize> = entry["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        file.display()
    );
    (data, shape)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn clips() -> Vec<Value> {
    manifest()["clips"].as_array().unwrap().clone()
}

fn mono16k() -> Value {
    clips()
        .into_iter()
        .find(|c| c["sample_rate"] == 16_000)
        .expect("a 16 kHz clip")
}

#[test]
fn log_mel_matches_the_reference_front_end() {
    let clip = mono16k();
    let audio = decode_file(
        &fixtures().join(clip["audio"].as_str().unwrap()),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(audio.sample_rate, 16_000);
    let mel = MelFrontEnd::default().log_mel(&audio.samples).unwrap();
    let (want, shape) = read_f32(&clip["logmel"]);
    assert_eq!(
        [mel.n_frames, mel.n_mels],
        [shape[0], shape[1]],
        "frame count differs"
    );
    // The mel power is float16-rounded on both sides; a float32 rounding difference before
    // that can flip one float16 step (≤ 2^-10 relative, so ≤ 2^-10/ln 10 ≈ 4.2e-4 after the
    // log) in rare bins.
    let diffs: Vec<f32> = mel
        .data
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let max = diffs.iter().copied().fold(0.0, f32::max);
    let flipped = diffs.iter().filter(|d| **d > 1e-5).count();
    eprintln!(
        "log-mel: max |Δ| = {max:.2e}, {flipped} of {} values differ by > 1e-5",
        diffs.len()
    );
    assert!(max <= 4.5e-4, "max log-mel difference {max}");
    assert!(
        (flipped as f64) < 0.002 * diffs.len() as f64,
        "{flipped} of {} log-mel values differ",
        diffs.len()
    );
}

#[test]
fn per_patch_outputs_match_the_reference_model() {
    let clip = mono16k();
    let path = fixtures().join(clip["audio"].as_str().unwrap());
    for (model, want) in clip["models"].as_object().unwrap() {
        let e = Embedder::new(model, EmbedderOptions::default())
            .unwrap()
            .embed_file(&path)
            .unwrap();
        assert_eq!(
            e.patches.n_patches as u64,
            clip["n_patches"].as_u64().unwrap()
        );
        for layer in ["penultimate", "taggram"] {
            let (reference, _) = read_f32(&want[layer]);
            let ours = &e.patches.layers[layer];
            let d = max_abs_diff(ours, &reference);
            eprintln!("{model} {layer}: max |Δ| = {d:.2e}");
            assert!(d <= 1e-4, "{model} {layer}: max |Δ| = {d}");
        }
    }
}

#[test]
fn compressed_44k_stereo_files_embed_like_the_reference() {
    for clip in clips().into_iter().filter(|c| c["sample_rate"] != 16_000) {
        let path = fixtures().join(clip["audio"].as_str().unwrap());
        for (model, want) in clip["models"].as_object().unwrap() {
            let e = Embedder::new(model, EmbedderOptions::default())
                .unwrap()
                .embed_file(&path)
                .unwrap();
            let c = cosine(
                &e.pooled["penultimate"],
                &floats(&want["pooled_penultimate"]),
            );
            eprintln!(
                "{} {model}: pooled penultimate cosine {c:.5}",
                clip["audio"]
            );
            assert!(c >= 0.999, "{}: cosine {c}", clip["audio"]);
        }
    }
}

#[test]
fn top_tags_agree_with_the_reference() {
    let clip = mono16k();
    let Some(want) = clip.get("top_tags").and_then(|t| t.as_array()) else {
        panic!("manifest lacks top_tags for the 16 kHz clip");
    };
    let path = fixtures().join(clip["audio"].as_str().unwrap());
    let e = Embedder::new("MTT_musicnn", EmbedderOptions::default())
        .unwrap()
        .embed_file(&path)
        .unwrap();
    for (i, (tag, score)) in e.top_tags.iter().take(3).enumerate() {
        assert_eq!(tag, want[i][0].as_str().unwrap());
        assert!((*score as f64 - want[i][1].as_f64().unwrap()).abs() < 1e-4);
    }
}
