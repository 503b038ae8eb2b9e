//! Parity with the reference Python implementation (musicnn 0.1.0 on TensorFlow), using the
//! fixtures `tools/export/make_fixtures.py` committed under `tests/fixtures/parity/`, and the
//! real exported models through the real ONNX Runtime. No mocks: if the runtime is missing,
//! these tests fail with the message that says how to install it (`make setup`).

mod parity;

use cadenza_model::{Embedder, EmbedderOptions, ModelError};

#[test]
fn unknown_model_names_the_known_ones() {
    let err = Embedder::new("no_such_model", EmbedderOptions::default()).unwrap_err();
    assert!(matches!(err, ModelError::ModelNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("MTT_musicnn"),
        "message should list the known models: {msg}"
    );
}

#[test]
fn audio_errors_pass_through_with_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.flac");
    std::fs::write(&p, b"").unwrap();
    let e = Embedder::new("MTT_musicnn", EmbedderOptions::default()).unwrap();
    let err = e.embed_file(&p).unwrap_err();
    assert_eq!(err.kind(), "empty", "{err}");
}
