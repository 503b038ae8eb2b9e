//! The whole path from a file to a track embedding: decode → resample → log-mel → model → pool.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cadenza_audio::{DecodedAudio, Isolation, Limits, MelFrontEnd, decode_file};
use serde::Serialize;

use crate::error::Result;
use crate::model::{Model, ModelOptions, PatchOutputs};

/// Settings of an [`Embedder`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedderOptions {
    pub model: ModelOptions,
    pub limits: Limits,
    /// How many top tags to report.
    pub top_tags: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            model: ModelOptions::default(),
            limits: Limits::default(),
            top_tags: 5,
        }
    }
}

/// Where the time of one embedding went (for benchmarks and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    pub decode: Duration,
    pub resample: Duration,
    pub mel: Duration,
    pub model: Duration,
}

impl std::ops::AddAssign for Timings {
    fn add_assign(&mut self, o: Timings) {
        self.decode += o.decode;
        self.resample += o.resample;
        self.mel += o.mel;
        self.model += o.model;
    }
}

/// A track's embedding: per-patch outputs and their mean over patches.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub model: String,
    pub duration_s: f64,
    pub source_sample_rate: u32,
    pub source_channels: usize,
    pub patches: PatchOutputs,
    /// Mean over patches of each output layer (`penultimate`, `taggram`, …).
    pub pooled: BTreeMap<String, Vec<f32>>,
    /// Highest-scoring tags of the pooled taggram, best first.
    pub top_tags: Vec<(String, f32)>,
    /// Name of the layer that is the track's vector (see [`crate::ModelSpec::embedding_layer`]).
    pub embedding_layer: String,
    pub timings: Timings,
}

impl Embedding {
    /// The track's vector: the pooled embedding layer.
    pub fn vector(&self) -> &[f32] {
        &self.pooled[&self.embedding_layer]
    }
}

/// Decoder, front end and model together. Cheap to call repeatedly; one per worker thread.
#[derive(Debug)]
pub struct Embedder {
    model: Model,
    front: MelFrontEnd,
    options: EmbedderOptions,
}

impl Embedder {
    pub fn new(model_name: &str, options: EmbedderOptions) -> Result<Embedder> {
        let model = Model::load(model_name, options.model.clone())?;
        Ok(Self::with_model(model, options))
    }

    pub fn with_model(model: Model, options: EmbedderOptions) -> Embedder {
        Embedder {
            model,
            front: MelFrontEnd::default(),
            options,
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Embed the audio file at `path`.
    pub fn embed_file(&self, path: &Path) -> Result<Embedding> {
        let t0 = Instant::now();
        let decoded = decode_file(path, &self.options.limits)?;
        let decode = t0.elapsed();
        let mut e = self.embed_decoded(decoded)?;
        e.timings.decode = decode;
        Ok(e)
    }

    /// [`Embedder::embed_file`] with the decoding in an isolated worker process, under its
    /// memory, CPU-time and wall-clock limits (`cadenza_audio::isolate`): a file that makes
    /// the decoder abort, allocate wildly or spin costs a worker, not this process.
    pub fn embed_file_isolated(&self, path: &Path, isolation: &Isolation) -> Result<Embedding> {
        let t0 = Instant::now();
        let decoded = isolation.decode_file(path, &self.options.limits)?;
        let decode = t0.elapsed();
        let mut e = self.embed_decoded(decoded)?;
        e.timings.decode = decode;
        Ok(e)
    }

    /// Embed audio already decoded to mono at any supported rate.
    pub fn embed_decoded(&self, decoded: DecodedAudio) -> Result<Embedding> {
        let (source_sample_rate, source_channels) =
            (decoded.source_sample_rate, decoded.source_channels);
        let t0 = Instant::now();
        let audio = cadenza_audio::to_model_rate(decoded)?;
        let resample = t0.elapsed();
        let t1 = Instant::now();
        let patches = self.front.patches_from_samples(&audio.samples)?;
        let mel = t1.elapsed();
        let t2 = Instant::now();
        let outputs = self.model.run(&patches)?;
        let model = t2.elapsed();
        let pooled = outputs.mean_pooled();
        let top_tags = self.top_tags(&pooled);
        Ok(Embedding {
            model: self.model.name().to_owned(),
            duration_s: audio.duration_s(),
            source_sample_rate,
            source_channels,
            patches: outputs,
            pooled,
            top_tags,
            embedding_layer: self.model.spec().embedding_layer().name.clone(),
            timings: Timings {
                decode: Duration::ZERO,
                resample,
                mel,
                model,
            },
        })
    }

    fn top_tags(&self, pooled: &BTreeMap<String, Vec<f32>>) -> Vec<(String, f32)> {
        let tags = &self.model.spec().tags;
        let Some(scores) = pooled.get("taggram") else {
            return Vec::new();
        };
        let mut ranked: Vec<(String, f32)> =
            tags.iter().cloned().zip(scores.iter().copied()).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(self.options.top_tags);
        ranked
    }
}
