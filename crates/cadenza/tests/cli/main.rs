//! The `cadenza` binary as a user runs it: real files, the real model, real exit codes.

use std::process::Command;

use serde_json::Value;

fn cadenza() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cadenza"))
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/parity")
        .join(name)
}

#[test]
fn embed_reports_every_file_and_fails_only_for_the_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("clip16k_mono.wav"), dir.path().join("good.wav")).unwrap();
    std::fs::copy(
        fixture("clip44k_stereo.flac"),
        dir.path().join("good2.flac"),
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.mp3"), b"definitely not an mp3 file").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored: not audio").unwrap();

    let out = cadenza()
        .arg("embed")
        .arg(dir.path())
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one line per audio file, the .txt skipped");

    let bad = lines
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with("broken.mp3"))
        .unwrap();
    assert_eq!(bad["error_kind"], "unrecognised_format");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("not a recognised audio format")
    );

    for good in lines.iter().filter(|l| l.get("error").is_none()) {
        assert_eq!(good["model"], "MTT_musicnn");
        assert_eq!(good["penultimate"].as_array().unwrap().len(), 200);
        assert_eq!(good["taggram"].as_array().unwrap().len(), 50);
        assert_eq!(good["mean_pool"].as_array().unwrap().len(), 753);
        assert!(good["n_patches"].as_u64().unwrap() >= 1);
        let tags = good["top_tags"].as_array().unwrap();
        assert_eq!(tags.len(), 5);
        assert!(tags[0]["score"].as_f64().unwrap() >= tags[4]["score"].as_f64().unwrap());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.mp3"),
        "the failure is logged: {stderr}"
    );
}

#[test]
fn all_good_files_exit_zero_and_layers_can_be_selected() {
    let out = cadenza()
        .args(["embed", "--layers", "penultimate", "--per-patch"])
        .arg(fixture("clip16k_mono.wav"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(line.get("taggram").is_none());
    let patches = line["patches"]["penultimate"].as_array().unwrap();
    assert_eq!(patches.len() as u64, line["n_patches"].as_u64().unwrap());
}

#[test]
fn missing_model_is_a_clear_error() {
    let out = cadenza()
        .args(["embed", "--model", "nope"])
        .arg(fixture("clip16k_mono.wav"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model `nope` was not found"), "{stderr}");
}
