//! The audio front end on arbitrary bytes: decode (symphonia, every format it knows), down-mix,
//! resample to 16 kHz, log-mel and patches — what every upload goes through. The first byte
//! picks the file-extension hint (as an upload's filename would), the rest is the file.
//! Failing is: a panic that escapes the decoder's containment, a non-finite log-mel value, a
//! memory error (AddressSanitizer), a run over libFuzzer's `-timeout` or `-rss_limit_mb`.
#![no_main]

use std::sync::OnceLock;

use cadenza_audio::{Limits, MelConfig, MelFrontEnd};
use libfuzzer_sys::fuzz_target;

const HINTS: [&str; 6] = ["wav", "flac", "ogg", "mp3", "m4a", ""];

fuzz_target!(|data: &[u8]| {
    static FRONT: OnceLock<MelFrontEnd> = OnceLock::new();
    let Some((&hint, file)) = data.split_first() else {
        return;
    };
    let hint = HINTS[usize::from(hint) % HINTS.len()];
    // A minute at most, so one input stays short; the limit checks are fuzzed too.
    let limits = Limits {
        max_duration_s: 60.0,
        ..Limits::default()
    };
    let Ok(decoded) = cadenza_audio::decode_bytes(file.to_vec(), Some(hint), &limits) else {
        return;
    };
    let Ok(at_16k) = cadenza_audio::to_model_rate(decoded) else {
        return;
    };
    let front = FRONT.get_or_init(|| MelFrontEnd::new(MelConfig::default()));
    if let Ok(patches) = front.patches_from_samples(&at_16k.samples) {
        assert!(
            patches.data.iter().all(|x| x.is_finite()),
            "a non-finite log-mel value"
        );
    }
});
