use std::path::PathBuf;

use cadenza_audio::AudioError;

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("\n  - {}", p.display()))
        .collect()
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime (libonnxruntime) was not found. Run `make setup` in the cadenza checkout \
         (it installs the `onnxruntime` wheel into .venv), or point ORT_DYLIB_PATH at \
         libonnxruntime.so. Looked in:{}", list(.searched)
    )]
    RuntimeNotFound { searched: Vec<PathBuf> },
    #[error("ONNX Runtime at {path} could not be loaded: {detail}")]
    RuntimeLoad { path: PathBuf, detail: String },
    #[error(
        "model `{name}` was not found (expected `{name}.onnx` and `{name}.json`). Known models: \
         {known}. Set CADENZA_MODELS_DIR to the folder holding them. Looked in:{}", list(.searched)
    )]
    ModelNotFound {
        name: String,
        known: String,
        searched: Vec<PathBuf>,
    },
    #[error("model description {path} is invalid: {detail}")]
    BadSpec { path: PathBuf, detail: String },
    #[error("model `{model}` failed: {detail}")]
    Inference { model: String, detail: String },
    #[error(transparent)]
    Audio(#[from] AudioError),
}

impl ModelError {
    /// A short, stable, low-cardinality name for metrics labels and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::RuntimeNotFound { .. } => "runtime_not_found",
            ModelError::RuntimeLoad { .. } => "runtime_load",
            ModelError::ModelNotFound { .. } => "model_not_found",
            ModelError::BadSpec { .. } => "bad_model_spec",
            ModelError::Inference { .. } => "inference",
            ModelError::Audio(a) => a.kind(),
        }
    }
}
