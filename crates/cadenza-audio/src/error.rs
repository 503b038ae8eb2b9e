use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;

/// Why a piece of audio could not be turned into model input.
///
/// Each message says what was wrong with the *input* (not with cadenza), so it can be shown to
/// the person who uploaded the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("the file is {size} bytes, above the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "not a recognised audio format ({detail}); supported: WAV, FLAC, OGG/Vorbis, MP3, AIFF, CAF, MP4/M4A (AAC, ALAC), MKV/WebM"
    )]
    UnrecognisedFormat { detail: String },
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("unsupported audio codec or feature: {detail}")]
    UnsupportedCodec { detail: String },
    #[error("the audio stream is corrupt: {detail}")]
    Corrupt { detail: String },
    #[error(
        "the file is truncated: the header promises {expected_s:.2} s of audio but only {decoded_s:.2} s could be decoded"
    )]
    Truncated { expected_s: f64, decoded_s: f64 },
    #[error("sample rate {rate} Hz is outside the supported range {min}..={max} Hz")]
    BadSampleRate { rate: u32, min: u32, max: u32 },
    #[error("{channels} channels is outside the supported range 1..={max}")]
    BadChannelCount { channels: usize, max: usize },
    #[error("the audio lasts {duration_s:.2} s, longer than the limit of {limit_s:.0} s")]
    TooLong { duration_s: f64, limit_s: f64 },
    #[error("the audio lasts {duration_s:.2} s, shorter than one {min_s:.2} s model patch")]
    TooShort { duration_s: f64, min_s: f64 },
    #[error("the audio contains {count} NaN or infinite samples (first at {first_at_s:.3} s)")]
    NonFiniteSamples { count: usize, first_at_s: f64 },
    #[error("resampling from {from} Hz to {to} Hz failed: {detail}")]
    Resample { from: u32, to: u32, detail: String },
    /// An error the isolated decoding worker reported (one of the kinds above, by name).
    #[error("{message}")]
    Isolated { kind: &'static str, message: String },
    /// The isolated decoding worker was stopped at one of its resource limits.
    #[error(
        "decoding this file needed more {limit} than the decoder may use ({detail}); an archive recording within the size and duration limits never does"
    )]
    DecoderLimit { limit: &'static str, detail: String },
    /// The isolated decoding worker died on this file (a decoder bug the file triggers).
    #[error("the decoder crashed on this file ({detail})")]
    DecoderCrashed { detail: String },
}

/// Every kind [`AudioError::kind`] can return for a decoding error (the worker reports kinds
/// by name; the parent maps them back to these static names).
pub const DECODE_KINDS: [&str; 14] = [
    "io",
    "empty",
    "too_large",
    "unrecognised_format",
    "no_audio_track",
    "unsupported_codec",
    "corrupt",
    "truncated",
    "bad_sample_rate",
    "bad_channel_count",
    "too_long",
    "too_short",
    "non_finite_samples",
    "resample",
];

impl AudioError {
    /// A short, stable, low-cardinality name for metrics labels and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            AudioError::Io { .. } => "io",
            AudioError::Empty => "empty",
            AudioError::TooLarge { .. } => "too_large",
            AudioError::UnrecognisedFormat { .. } => "unrecognised_format",
            AudioError::NoAudioTrack => "no_audio_track",
            AudioError::UnsupportedCodec { .. } => "unsupported_codec",
            AudioError::Corrupt { .. } => "corrupt",
            AudioError::Truncated { .. } => "truncated",
            AudioError::BadSampleRate { .. } => "bad_sample_rate",
            AudioError::BadChannelCount { .. } => "bad_channel_count",
            AudioError::TooLong { .. } => "too_long",
            AudioError::TooShort { .. } => "too_short",
            AudioError::NonFiniteSamples { .. } => "non_finite_samples",
            AudioError::Resample { .. } => "resample",
            AudioError::Isolated { kind, .. } => kind,
            AudioError::DecoderLimit { .. } => "decoder_limit",
            AudioError::DecoderCrashed { .. } => "decoder_crashed",
        }
    }
}
