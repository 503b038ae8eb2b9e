//! Inputs `make fuzz` found that broke the front end, kept so they stay fixed
//! (tests/fixtures/fuzz, each a mutation of a parity fixture).

use std::path::PathBuf;

use cadenza_audio::{Limits, MelConfig, MelFrontEnd, decode_file, load_for_model};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name)
}

/// A WAV whose `fmt` chunk claims so many channels that symphonia's block-align arithmetic
/// overflows: a panic inside the decoder (with overflow checks, as in tests) must come back
/// as an error, never unwind out of the front end.
#[test]
fn a_decoder_panic_is_an_error() {
    let result = decode_file(&fixture("wav-fmt-channel-overflow.wav"), &Limits::default());
    if cfg!(debug_assertions) {
        let err = result.expect_err("the decoder's overflow is caught");
        assert_eq!(err.kind(), "decoder_crashed", "{err}");
        assert!(err.to_string().contains("panicked"), "{err}");
    }
}

/// MP3s whose corrupted frames decode to samples far outside [-1, 1]: the mel power exceeds
/// float16's range, which used to give `inf` log-mel values (and NaN embeddings).
#[test]
fn garbage_loud_enough_to_overflow_float16_stays_finite() {
    let front = MelFrontEnd::new(MelConfig::default());
    for name in ["mp3-loud-garbage-1.mp3", "mp3-loud-garbage-2.mp3"] {
        let audio = load_for_model(&fixture(name), &Limits::default()).unwrap();
        let patches = front.patches_from_samples(&audio.samples).unwrap();
        assert!(
            patches.data.iter().all(|x| x.is_finite()),
            "{name}: a non-finite log-mel value"
        );
    }
}
