//! musicnn's log-mel front end, reproduced number for number.
//!
//! The reference (musicnn 0.1.0 `extractor.batch_data`) does, at 16 kHz mono:
//! `librosa.feature.melspectrogram(y, sr=16000, hop_length=256, n_fft=512, n_mels=96)` — a
//! centred STFT with a periodic Hann window, power 2, Slaney mel filters (fmin 0, fmax 8 kHz,
//! Slaney area normalisation) — then `.astype(np.float16)` and `np.log10(10000 * x + 1)`, and
//! cuts 187-frame patches without overlap, dropping the incomplete tail.
//!
//! Two details matter for parity:
//! * **Edge padding.** The centred STFT pads `n_fft/2` samples at both ends. We *reflect*, as
//!   librosa did when the models were trained (librosa ≥ 0.10 zero-pads by default, which
//!   changes the first and last frames).
//! * **float16 rounding.** The mel power is cast to float16, then `log10(10000·x + 1)` runs in
//!   float32: under numpy 1.x (musicnn's era, and the fixtures') `10000 * float16_array`
//!   promotes to float32. (numpy ≥ 2 keeps float16 through the log and overflows to `inf` for
//!   mel power > 6.55; that is not the reference behaviour and we do not reproduce it.)

use std::sync::Arc;

use half::f16;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use crate::error::{AudioError, Result};

/// Front-end parameters; the defaults are musicnn's and the only ones the models accept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MelConfig {
    pub sample_rate: u32,
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub fmin: f64,
    pub fmax: f64,
    pub patch_frames: usize,
}

impl Default for MelConfig {
    fn default() -> Self {
        MelConfig {
            sample_rate: 16_000,
            n_fft: 512,
            hop: 256,
            n_mels: 96,
            fmin: 0.0,
            fmax: 8_000.0,
            patch_frames: 187,
        }
    }
}

/// Fewest 16 kHz samples that give one full patch: a centred STFT yields `1 + len / hop`
/// frames, so 187 frames need `186 · 256` samples.
pub const MIN_SAMPLES_PER_PATCH: usize = 186 * 256;

/// A log-mel spectrogram, frames × mel bands, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    pub data: Vec<f32>,
    pub n_frames: usize,
    pub n_mels: usize,
}

impl LogMel {
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.n_mels..(t + 1) * self.n_mels]
    }
}

/// Non-overlapping patches, `[n_patches, patch_frames, n_mels]` row-major: the model input.
#[derive(Debug, Clone, PartialEq)]
pub struct Patches {
    pub data: Vec<f32>,
    pub n_patches: usize,
    pub patch_frames: usize,
    pub n_mels: usize,
}

impl Patches {
    pub fn patch(&self, i: usize) -> &[f32] {
        let len = self.patch_frames * self.n_mels;
        &self.data[i * len..(i + 1) * len]
    }
}

/// A mel filter: the contiguous FFT bins it covers and their weights.
#[derive(Debug, Clone)]
struct Filter {
    start: usize,
    weights: Vec<f32>,
}

/// Reusable front end: holds the window, the FFT plan and the filterbank.
#[derive(Clone)]
pub struct MelFrontEnd {
    config: MelConfig,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
    filters: Vec<Filter>,
}

impl std::fmt::Debug for MelFrontEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelFrontEnd")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for MelFrontEnd {
    fn default() -> Self {
        Self::new(MelConfig::default())
    }
}

impl MelFrontEnd {
    pub fn new(config: MelConfig) -> Self {
        let n = config.n_fft;
        // Periodic Hann (scipy.signal.get_window('hann', n, fftbins=True)), computed in f64.
        let window = (0..n)
            .map(|k| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos()) as f32)
            .collect();
        let fft = FftPlanner::new().plan_fft_forward(n);
        let filters = slaney_filterbank(&config);
        MelFrontEnd {
            config,
            window,
            fft,
            filters,
        }
    }

    pub fn config(&self) -> &MelConfig {
        &self.config
    }

    /// Log-mel of 16 kHz mono samples (all frames, before patching).
    pub fn log_mel(&self, samples: &[f32]) -> Result<LogMel> {
        let MelConfig {
            n_fft, hop, n_mels, ..
        } = self.config;
        let pad = n_fft / 2;
        if samples.len() <= pad {
            return Err(AudioError::TooShort {
                duration_s: samples.len() as f64 / self.config.sample_rate as f64,
                min_s: MIN_SAMPLES_PER_PATCH as f64 / self.config.sample_rate as f64,
            });
        }
        let padded = reflect_pad(samples, pad);
        let n_frames = 1 + (padded.len() - n_fft) / hop;
        let n_bins = n_fft / 2 + 1;
        let mut data = Vec::with_capacity(n_frames * n_mels);
        let mut buf = vec![Complex32::default(); n_fft];
        let mut scratch = vec![Complex32::default(); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0.0f32; n_bins];
        for t in 0..n_frames {
            let frame = &padded[t * hop..t * hop + n_fft];
            for ((b, &x), &w) in buf.iter_mut().zip(frame).zip(&self.window) {
                *b = Complex32::new(x * w, 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buf[..n_bins]) {
                *p = c.norm_sqr();
            }
            data.extend(self.filters.iter().map(|f| {
                let bins = &power[f.start..f.start + f.weights.len()];
                let mel: f32 = f.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
                compress(mel)
            }));
        }
        Ok(LogMel {
            data,
            n_frames,
            n_mels,
        })
    }

    /// Cut a log-mel into non-overlapping patches, dropping the incomplete tail.
    pub fn patches(&self, mel: &LogMel) -> Result<Patches> {
        let pf = self.config.patch_frames;
        if mel.n_frames < pf {
            return Err(AudioError::TooShort {
                duration_s: ((mel.n_frames.max(1) - 1) * self.config.hop) as f64
                    / self.config.sample_rate as f64,
                min_s: MIN_SAMPLES_PER_PATCH as f64 / self.config.sample_rate as f64,
            });
        }
        let n_patches = (mel.n_frames - pf) / pf + 1;
        let len = n_patches * pf * mel.n_mels;
        Ok(Patches {
            data: mel.data[..len].to_vec(),
            n_patches,
            patch_frames: pf,
            n_mels: mel.n_mels,
        })
    }

    /// Samples → patches in one call.
    pub fn patches_from_samples(&self, samples: &[f32]) -> Result<Patches> {
        self.patches(&self.log_mel(samples)?)
    }
}

/// `log10(10000·x + 1)` of the float16-rounded mel power, in float32 (see the module docs).
/// Powers beyond float16's range (65504), and NaN, saturate at 65504 instead of becoming
/// `inf`/NaN as in the reference: real recordings never get there, but a decoder fed a
/// hostile file can emit samples far outside [-1, 1], and a non-finite model input would
/// poison the track's embedding (and every profile that includes it).
fn compress(mel_power: f32) -> f32 {
    let power = if mel_power.is_nan() {
        f16::MAX.to_f32()
    } else {
        mel_power.min(f16::MAX.to_f32())
    };
    (f16::from_f32(power).to_f32() * 10_000.0 + 1.0).log10()
}

/// numpy's `np.pad(x, pad, mode="reflect")`: mirror without repeating the edge sample.
fn reflect_pad(x: &[f32], pad: usize) -> Vec<f32> {
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    out.extend((1..=pad).rev().map(|i| x[i.min(n - 1)]));
    out.extend_from_slice(x);
    out.extend((0..pad).map(|i| x[(n - 2).saturating_sub(i)]));
    out
}

fn hz_to_mel(f: f64) -> f64 {
    // Slaney: linear below 1 kHz, logarithmic above.
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// librosa.filters.mel(htk=False, norm="slaney"), stored sparsely.
fn slaney_filterbank(c: &MelConfig) -> Vec<Filter> {
    let n_bins = c.n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|k| k as f64 * c.sample_rate as f64 / c.n_fft as f64)
        .collect();
    let (mmin, mmax) = (hz_to_mel(c.fmin), hz_to_mel(c.fmax));
    let n_pts = c.n_mels + 2;
    let mel_f: Vec<f64> = (0..n_pts)
        .map(|i| mel_to_hz(mmin + (mmax - mmin) * i as f64 / (n_pts - 1) as f64))
        .collect();
    (0..c.n_mels)
        .map(|i| {
            let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let enorm = 2.0 / (hi - lo);
            let dense: Vec<f32> = fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - lo) / (mid - lo);
                    let upper = (hi - f) / (hi - mid);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect();
            let start = dense.iter().position(|&w| w > 0.0).unwrap_or(0);
            let end = dense
                .iter()
                .rposition(|&w| w > 0.0)
                .map_or(start, |e| e + 1);
            Filter {
                start,
                weights: dense[start..end].to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_pad_matches_numpy() {
        // np.pad([1,2,3,4,5], 2, mode="reflect") == [3,2,1,2,3,4,5,4,3]
        assert_eq!(
            reflect_pad(&[1.0, 2.0, 3.0, 4.0, 5.0], 2),
            vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0]
        );
    }

    #[test]
    fn slaney_scale_is_linear_then_log() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((mel_to_hz(hz_to_mel(3456.0)) - 3456.0).abs() < 1e-9);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
    }

    #[test]
    fn frame_and_patch_counts() {
        let fe = MelFrontEnd::default();
        let samples = vec![0.0f32; 16_000 * 9];
        let mel = fe.log_mel(&samples).unwrap();
        assert_eq!(mel.n_frames, 1 + 16_000 * 9 / 256);
        let p = fe.patches(&mel).unwrap();
        assert_eq!(p.n_patches, 3);
        assert_eq!(p.data.len(), 3 * 187 * 96);
        assert!(matches!(
            fe.patches_from_samples(&vec![0.0; MIN_SAMPLES_PER_PATCH - 1]),
            Err(AudioError::TooShort { .. })
        ));
        assert_eq!(
            fe.patches_from_samples(&vec![0.0; MIN_SAMPLES_PER_PATCH])
                .unwrap()
                .n_patches,
            1
        );
    }

    #[test]
    fn a_tone_lights_its_own_band() {
        let fe = MelFrontEnd::default();
        let tone: Vec<f32> = (0..16_000 * 4)
            .map(|i| 0.1 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let mel = fe.log_mel(&tone).unwrap();
        let frame = mel.frame(100);
        let peak = (0..96)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        // 1 kHz is mel 15; the 96 bands span 0..hz_to_mel(8000) ≈ 45.2, so band ≈ 15/45.2·97 - 1.
        let expected = (15.0 / hz_to_mel(8000.0) * 97.0 - 1.0).round() as usize;
        assert!(
            peak.abs_diff(expected) <= 1,
            "peak band {peak}, expected ~{expected}"
        );
    }

    #[test]
    fn compression_rounds_the_power_to_float16_first() {
        assert_eq!(compress(0.0), 0.0);
        // 0.1 is not a float16 value; the reference sees 0.0999755859375 (0x3dccc000 as f32).
        let expected = (f32::from_bits(0x3dccc000) * 10_000.0 + 1.0).log10();
        assert_eq!(compress(0.1), expected);
        // Loud input stays finite (float16 tops out at 65504, well above real mel powers).
        assert!(compress(300.0).is_finite());
        // Beyond it (a hostile decode), saturation rather than inf / NaN (found by fuzzing).
        let top = compress(65_504.0);
        for x in [1e6, f32::MAX, f32::INFINITY, f32::NAN] {
            assert_eq!(compress(x), top, "{x}");
        }
    }
}
