//! Decoding: any container/codec symphonia knows → mono `f32` samples at the file's own rate.

use std::fs::File;
use std::io::{Cursor, ErrorKind};
use std::path::Path;

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use crate::error::{AudioError, Result};

/// What a decode may cost. Defaults suit an archive of recordings: an hour-long movement is
/// fine, a 10 GB file or a day-long stream is not.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Longest accepted audio, in seconds (checked against the header and while decoding).
    pub max_duration_s: f64,
    /// Shortest accepted audio, in seconds (one model patch by default).
    pub min_duration_s: f64,
    /// Accepted sample rates, inclusive.
    pub min_sample_rate: u32,
    pub max_sample_rate: u32,
    /// Most channels accepted (they are averaged to mono).
    pub max_channels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            max_duration_s: 3_600.0,
            min_duration_s: crate::mel::MIN_SAMPLES_PER_PATCH as f64
                / crate::MODEL_SAMPLE_RATE as f64,
            min_sample_rate: 4_000,
            max_sample_rate: 384_000,
            max_channels: 32,
        }
    }
}

/// Mono audio at its own sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// Samples in [-1, 1] (the average of all channels).
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// Channels in the source before the down-mix.
    pub source_channels: usize,
    /// Sample rate of the source before any resampling.
    pub source_sample_rate: u32,
}

impl DecodedAudio {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// A decoder that produced nothing for this many packets in a row is spinning on hostile input.
const MAX_EMPTY_PACKETS: usize = 100_000;
/// Corrupt packets are skipped (as players do) up to this many; beyond, the file is corrupt.
const MAX_BAD_PACKETS: usize = 64;

/// Decode the file at `path`; its extension is only a hint, the content decides.
pub fn decode_file(path: &Path, limits: &Limits) -> Result<DecodedAudio> {
    let io_err = |source| AudioError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io_err)?.len();
    check_size(size, limits)?;
    let file = File::open(path).map_err(io_err)?;
    let ext = path.extension().and_then(|e| e.to_str());
    contain(|| decode_source(Box::new(file), ext, limits))
}

/// Runs a decode, turning a panic inside the decoder (a symphonia bug a crafted file
/// triggers: fuzzing found an integer overflow in its WAV `fmt` parsing) into an error, so the
/// front end never panics on input.
fn contain(decode: impl FnOnce() -> Result<DecodedAudio>) -> Result<DecodedAudio> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(AudioError::DecoderCrashed {
            detail: format!("the decoder panicked: {what}"),
        })
    })
}

/// Decode an in-memory upload; `extension` (e.g. `"flac"`) is an optional hint.
pub fn decode_bytes(
    bytes: Vec<u8>,
    extension: Option<&str>,
    limits: &Limits,
) -> Result<DecodedAudio> {
    check_size(bytes.len() as u64, limits)?;
    contain(|| decode_source(Box::new(Cursor::new(bytes)), extension, limits))
}

fn check_size(size: u64, limits: &Limits) -> Result<()> {
    if size == 0 {
        return Err(AudioError::Empty);
    }
    if size > limits.max_bytes {
        return Err(AudioError::TooLarge {
            size,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn decode_source(
    source: Box<dyn MediaSource>,
    ext: Option<&str>,
    limits: &Limits,
) -> Result<DecodedAudio> {
    let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| AudioError::UnrecognisedFormat {
            detail: describe(&e),
        })?;
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or(AudioError::NoAudioTrack)?
        .clone();
    let Some(CodecParameters::Audio(params)) = track.codec_params.clone() else {
        return Err(AudioError::NoAudioTrack);
    };
    if let Some(rate) = params.sample_rate {
        check_rate(rate, limits)?;
        if let Some(frames) = track.num_frames {
            let declared_s = frames as f64 / rate as f64;
            if declared_s > limits.max_duration_s {
                return Err(AudioError::TooLong {
                    duration_s: declared_s,
                    limit_s: limits.max_duration_s,
                });
            }
        }
    }
    if let Some(channels) = &params.channels {
        check_channels(channels.count(), limits)?;
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::UnsupportedCodec {
            detail: describe(&e),
        })?;

    let mut out = Vec::new();
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut rate: Option<u32> = params.sample_rate;
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
    let mut stream_cut_short = false;
    let (mut bad_packets, mut empty_run) = (0usize, 0usize);
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) | Err(SymError::ResetRequired) => break,
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                stream_cut_short = true;
                break;
            }
            Err(e) => {
                return Err(AudioError::Corrupt {
                    detail: describe(&e),
                });
            }
        };
        if packet.track_id != track.id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(_) | SymError::IoError(_))
                if bad_packets < MAX_BAD_PACKETS =>
            {
                bad_packets += 1;
                continue;
            }
            Err(e) => {
                return Err(AudioError::Corrupt {
                    detail: describe(&e),
                });
            }
        };
        let spec = buf.spec();
        let buf_rate = spec.rate();
        match rate {
            None => {
                check_rate(buf_rate, limits)?;
                rate = Some(buf_rate);
            }
            Some(r) if r != buf_rate => {
                return Err(AudioError::Corrupt {
                    detail: format!("sample rate changes mid-stream ({r} Hz → {buf_rate} Hz)"),
                });
            }
            Some(_) => {}
        }
        channels = spec.channels().count();
        check_channels(channels, limits)?;
        if buf.frames() == 0 {
            empty_run += 1;
            if empty_run > MAX_EMPTY_PACKETS {
                return Err(AudioError::Corrupt {
                    detail: "the decoder makes no progress".into(),
                });
            }
            continue;
        }
        empty_run = 0;
        buf.copy_to_vecs_planar(&mut planes);
        downmix_into(&planes, &mut out);
        let decoded_s = out.len() as f64 / buf_rate as f64;
        if decoded_s > limits.max_duration_s {
            return Err(AudioError::TooLong {
                duration_s: decoded_s,
                limit_s: limits.max_duration_s,
            });
        }
    }

    let sample_rate = rate.ok_or(AudioError::NoAudioTrack)?;
    let decoded_s = out.len() as f64 / sample_rate as f64;
    if let Some(frames) = track.num_frames {
        // A header that promises more than we could decode means the file was cut off. Allow a
        // codec's worth of slack (encoder delay/padding are already trimmed by symphonia).
        let expected_s = frames as f64 / sample_rate as f64;
        if decoded_s + 0.1 < expected_s {
            return Err(AudioError::Truncated {
                expected_s,
                decoded_s,
            });
        }
    } else if stream_cut_short && out.is_empty() {
        return Err(AudioError::Corrupt {
            detail: "the stream ends before any audio".into(),
        });
    }
    if decoded_s < limits.min_duration_s {
        return Err(AudioError::TooShort {
            duration_s: decoded_s,
            min_s: limits.min_duration_s,
        });
    }
    check_finite(&out, sample_rate)?;
    Ok(DecodedAudio {
        samples: out,
        sample_rate,
        source_channels: channels,
        source_sample_rate: sample_rate,
    })
}

/// Average the channels (librosa's `to_mono`), appending to `out`.
fn downmix_into(planes: &[Vec<f32>], out: &mut Vec<f32>) {
    let Some(first) = planes.first() else { return };
    if planes.len() == 1 {
        out.extend_from_slice(first);
        return;
    }
    let scale = 1.0 / planes.len() as f32;
    out.extend((0..first.len()).map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale));
}

fn check_rate(rate: u32, limits: &Limits) -> Result<()> {
    if !(limits.min_sample_rate..=limits.max_sample_rate).contains(&rate) {
        return Err(AudioError::BadSampleRate {
            rate,
            min: limits.min_sample_rate,
            max: limits.max_sample_rate,
        });
    }
    Ok(())
}

fn check_channels(channels: usize, limits: &Limits) -> Result<()> {
    if channels == 0 || channels > limits.max_channels {
        return Err(AudioError::BadChannelCount {
            channels,
            max: limits.max_channels,
        });
    }
    Ok(())
}

fn check_finite(samples: &[f32], rate: u32) -> Result<()> {
    let mut bad = samples.iter().enumerate().filter(|(_, s)| !s.is_finite());
    if let Some((first, _)) = bad.next() {
        return Err(AudioError::NonFiniteSamples {
            count: 1 + bad.count(),
            first_at_s: first as f64 / rate as f64,
        });
    }
    Ok(())
}

fn describe(e: &SymError) -> String {
    match e {
        SymError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
            "unexpected end of file".into()
        }
        other => other.to_string(),
    }
}
