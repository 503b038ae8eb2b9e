//! Audio front end of cadenza: decode any file an archive holds (symphonia), down-mix to mono,
//! resample to the model's 16 kHz (rubato), and compute musicnn's log-mel spectrogram cut into
//! the 187-frame patches the pretrained models expect.
//!
//! Everything here is a plain function over samples; no model, no I/O beyond reading the file.
//! Hostile or broken input is expected: every failure is a typed [`AudioError`] with a message a
//! person can act on, never a panic.

mod decode;
mod error;
pub mod isolate;
mod mel;
mod resample;

pub use decode::{DecodedAudio, Limits, decode_bytes, decode_file};
pub use error::{AudioError, DECODE_KINDS, Result};
pub use isolate::{Isolation, Probe};
pub use mel::{LogMel, MelConfig, MelFrontEnd, Patches};
pub use resample::resample_mono;

/// The sample rate every musicnn model was trained at.
pub const MODEL_SAMPLE_RATE: u32 = 16_000;

/// Decode a file and bring it to the model's rate: the whole path up to the log-mel.
pub fn load_for_model(path: &std::path::Path, limits: &Limits) -> Result<DecodedAudio> {
    let decoded = decode_file(path, limits)?;
    to_model_rate(decoded)
}

/// Resample already decoded audio to [`MODEL_SAMPLE_RATE`] (a no-op when it is already there).
pub fn to_model_rate(mut decoded: DecodedAudio) -> Result<DecodedAudio> {
    if decoded.sample_rate != MODEL_SAMPLE_RATE {
        decoded.samples = resample_mono(&decoded.samples, decoded.sample_rate, MODEL_SAMPLE_RATE)?;
        decoded.sample_rate = MODEL_SAMPLE_RATE;
    }
    Ok(decoded)
}
