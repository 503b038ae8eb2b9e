//! The built evaluation corpus, read by the Rust front end: every clip decodes, lasts its
//! catalogue duration (within 1 s of the 30 s target), and is not silent.
//!
//! Runs on `data/corpus/tiny` (or `CADENZA_CORPUS_DIR`). `make test` builds the tiny corpus
//! first and sets `CADENZA_CORPUS_REQUIRED=1`, so there a missing corpus is a failure; a bare
//! `cargo test` without a corpus prints that it skipped.

use std::path::PathBuf;

use cadenza_audio::{Limits, MelFrontEnd, load_for_model};

const TARGET_S: f64 = 30.0;

fn corpus_dir() -> PathBuf {
    std::env::var_os("CADENZA_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/corpus/tiny"))
}

#[test]
fn every_corpus_clip_decodes_with_the_rust_front_end() {
    let dir = corpus_dir();
    let catalogue = dir.join("catalogue.jsonl");
    if !catalogue.is_file() {
        let required = std::env::var("CADENZA_CORPUS_REQUIRED").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{} is missing (run `make corpus PRESET=tiny`)",
            catalogue.display()
        );
        eprintln!(
            "skipped: no corpus at {} (run `make corpus PRESET=tiny`)",
            dir.display()
        );
        return;
    }
    let text = std::fs::read_to_string(&catalogue).unwrap();
    let front = MelFrontEnd::default();
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = row["track_id"].as_str().unwrap();
        let path = dir.join(row["audio_path"].as_str().unwrap());
        let audio =
            load_for_model(&path, &Limits::default()).unwrap_or_else(|e| panic!("{id}: {e}"));
        let dur = audio.duration_s();
        let listed = row["duration_s"].as_f64().unwrap();
        assert!(
            (dur - listed).abs() < 0.1,
            "{id}: decoded {dur:.2} s, catalogue says {listed:.2} s"
        );
        if !row["distractor"].as_bool().unwrap_or(false) {
            assert!(
                (dur - TARGET_S).abs() <= 1.0,
                "{id}: {dur:.2} s is not within 1 s of {TARGET_S} s"
            );
        }
        let rms = (audio
            .samples
            .iter()
            .map(|s| (*s as f64).powi(2))
            .sum::<f64>()
            / audio.samples.len() as f64)
            .sqrt();
        assert!(rms > 1e-3, "{id}: silent (RMS {rms:.2e})");
        assert!(
            front
                .patches_from_samples(&audio.samples)
                .unwrap()
                .n_patches
                >= 9,
            "{id}"
        );
        checked += 1;
    }
    assert!(checked > 0, "empty catalogue");
    eprintln!("{checked} corpus clips decoded");
}
