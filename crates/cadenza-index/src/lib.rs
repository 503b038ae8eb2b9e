//! Vector index seam: the one trait cadenza's services store and search track and user
//! vectors through, with three implementations —
//!
//! * [`EdgeIndex`]: Qdrant's engine in process (`qdrant-edge`), one shard per collection on
//!   disk under a data directory — the embedded mode (`cadenza up`);
//! * [`QdrantIndex`]: a Qdrant server over gRPC (`qdrant-client`) — the distributed mode;
//! * [`MemoryIndex`]: exact brute force in memory — the reference semantics, and the index
//!   for other crates' unit tests.
//!
//! Services hold an `Arc<dyn VectorIndex>`; which one they get is the wiring's choice. No
//! qdrant type crosses this crate's API. Inputs are checked identically before they reach
//! any engine (see [`vector::prepare`]), so all implementations refuse the same requests
//! with the same [`IndexError`]s; with the `testing` feature, [`contract`] holds the
//! scenarios every implementation must pass.
//!
//! Scores follow Qdrant's conventions: cosine similarity and dot product (higher is better,
//! Cosine vectors are stored normalised), Euclidean distance (lower is better).

#[cfg(feature = "testing")]
pub mod contract;
pub mod edge;
mod error;
mod memory;
pub mod qdrant;
mod types;
pub mod vector;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

pub use edge::{EdgeIndex, EdgeOptions, Quantization};
pub use error::{IndexError, Result};
pub use memory::MemoryIndex;
pub use qdrant::{QdrantConfig, QdrantIndex};
pub use types::{
    CollectionSpec, Condition, Distance, FieldKind, Filter, MatchValue, Payload, Point, PointId,
    ScoredPoint, SearchRequest,
};

/// A store of vectors with payloads, in named collections, searchable by similarity.
///
/// Every method is safe to call concurrently. Writes are atomic per call in the sense that
/// matters here: a batch with an invalid vector is refused whole, before anything is
/// written.
#[async_trait]
pub trait VectorIndex: Send + Sync + Debug {
    /// Creates the collection if it does not exist. Calling it again with the same spec is a
    /// no-op that keeps the data; with indexed fields the collection lacks, it adds their
    /// payload indexes. Errors if the collection exists with another dimension
    /// ([`IndexError::DimensionMismatch`]) or distance.
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<()>;

    /// Deletes a collection and all its points; `false` if it did not exist. For rebuilds
    /// and for tests cleaning up after themselves on a shared server.
    async fn delete_collection(&self, name: &str) -> Result<bool>;

    /// Inserts or replaces points by id (vector and payload replaced as a whole). Durable
    /// when it returns: [`EdgeIndex`] has flushed the shard to disk, [`QdrantIndex`] waited
    /// for the server to apply it (Qdrant's WAL). Duplicate ids in one batch: the last wins.
    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<()>;

    /// Deletes points by id; ids that do not exist are ignored. Durable like `upsert`.
    async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<()>;

    /// The points with these ids, in the order asked, each once; missing ids are simply
    /// absent. Vectors are returned only if `with_vector` (otherwise empty).
    async fn get(&self, collection: &str, ids: &[PointId], with_vector: bool)
    -> Result<Vec<Point>>;

    /// [`VectorIndex::get`] for readers that only look: an index that keeps points in memory
    /// ([`EdgeIndex`]'s cache) hands out its own copies instead of cloning them, and a point
    /// may carry its vector even when `with_vector` is false.
    async fn get_shared(
        &self,
        collection: &str,
        ids: &[PointId],
        with_vector: bool,
    ) -> Result<Vec<Arc<Point>>> {
        Ok(self
            .get(collection, ids, with_vector)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    /// True when [`VectorIndex::get_shared`] is cheaper than having `search` return payloads
    /// and vectors (points in this process's memory), false when every read is a round trip
    /// (a server).
    fn shares_points(&self) -> bool {
        false
    }

    /// The nearest points to `request.vector`, best first (highest score for Cosine and Dot,
    /// smallest distance for Euclid), at most `request.limit`, no id twice.
    async fn search(&self, collection: &str, request: &SearchRequest) -> Result<Vec<ScoredPoint>>;

    /// A page of points in ascending id order, starting at `offset` (inclusive; `None` = the
    /// smallest id), with vectors and payloads, and the id that starts the next page (`None`
    /// after the last). For rebuilding one index from another and comparing them.
    async fn scroll(
        &self,
        collection: &str,
        offset: Option<PointId>,
        limit: usize,
    ) -> Result<(Vec<Point>, Option<PointId>)>;

    /// Number of points in the collection (exact).
    async fn count(&self, collection: &str) -> Result<u64>;

    /// Makes everything written so far durable (a no-op where every write already is).
    async fn flush(&self) -> Result<()>;

    /// Builds search structures (HNSW graphs, merged segments) now, for engines that do not
    /// do it by themselves. [`EdgeIndex`] needs it after bulk loads past ~10k points to stop
    /// scanning; the others do nothing.
    async fn optimize(&self) -> Result<()> {
        Ok(())
    }
}
