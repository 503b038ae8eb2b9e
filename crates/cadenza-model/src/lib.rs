//! Frozen pretrained audio models for cadenza: MusiCNN (and VGG) exported to ONNX, run through
//! ONNX Runtime (`ort`, loading `libonnxruntime` at run time), turning audio into per-patch
//! outputs and track-level pooled embeddings.
//!
//! The models are never trained here: they are the fixed "ears" of the recommender. Which file
//! and which runtime library are used is resolved by [`locate`], so a fresh checkout works after
//! `make setup` without any manual path setting.

mod embed;
mod error;
pub mod locate;
mod model;
mod spec;

pub use embed::{Embedder, EmbedderOptions, Embedding, Timings};
pub use error::{ModelError, Result};
pub use model::{Model, ModelOptions, PatchOutputs};
pub use spec::{InputSpec, ModelSpec, OutputSpec};

/// The model used when none is named: MusiCNN trained on MagnaTagATune.
pub const DEFAULT_MODEL: &str = "MTT_musicnn";
