//! The crate's error type.

use std::path::PathBuf;

use crate::types::{Distance, PointId};

/// Everything a vector index can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading or writing a collection nobody created with `ensure_collection`.
    #[error("unknown collection {0:?}: create it with ensure_collection first")]
    UnknownCollection(String),
    /// A collection name the embedded index cannot use as a directory name.
    #[error("invalid collection name {0:?}: use 1 to 64 ASCII letters, digits, '_' and '-'")]
    InvalidName(String),
    /// A vector (or an existing collection) of another dimension than expected.
    #[error("collection {collection:?} holds {expected}-dimensional vectors, got {got}")]
    DimensionMismatch {
        /// The collection.
        collection: String,
        /// Its dimension.
        expected: usize,
        /// The dimension offered.
        got: usize,
    },
    /// `ensure_collection` on an existing collection with another distance.
    #[error("collection {collection:?} exists with {existing:?} distance, not {requested:?}")]
    DistanceMismatch {
        /// The collection.
        collection: String,
        /// The distance it was created with.
        existing: Distance,
        /// The distance asked for.
        requested: Distance,
    },
    /// A vector the engine must never see: NaN or infinite components, or (Cosine) no
    /// direction. Rejected before anything is written, so the batch it came in is not
    /// applied at all.
    #[error("{} in collection {collection:?}: {reason}", match id {
        Some(id) => format!("invalid vector for point {id}"),
        None => "invalid query vector".to_owned(),
    })]
    InvalidVector {
        /// The collection.
        collection: String,
        /// The offending point, `None` for a query vector.
        id: Option<PointId>,
        /// What is wrong with it.
        reason: String,
    },
    /// A request that makes no sense whatever the data (e.g. a zero scroll page).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The engine or server failed; `context` says what we were doing.
    #[error("{context}: {source}")]
    Backend {
        /// What was being done, with the collection.
        context: String,
        /// The engine's or client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing the embedded index's own files failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A background task (a blocking engine call) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Result alias of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

impl IndexError {
    pub(crate) fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> IndexError {
        IndexError::Backend {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> IndexError {
        let path = path.into();
        move |source| IndexError::Io { path, source }
    }
}
