//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while building listeners, training rankers or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a valid JSON row: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("audio: {0}")]
    Audio(#[from] cadenza_audio::AudioError),
    #[error("embedding model: {0}")]
    Model(#[from] cadenza_model::ModelError),
    #[error("plot {name}: {message}")]
    Plot { name: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
