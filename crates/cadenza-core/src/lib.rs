//! Transport-free domain logic of cadenza: validated ids and listens, sessionisation, the
//! per-listener state the session-aggregation service keeps, and the pure pieces of ranking
//! (cosine, candidate merging, heard-exclusion, MMR, explanations, personalised popularity).
//!
//! Nothing here knows about tonic, Kafka or Qdrant: services convert their wire types into
//! these, call plain functions, and convert back. That keeps every rule testable with unit
//! tests and property tests, and identical in the embedded and the distributed wiring.

mod error;
mod explain;
mod ids;
mod listen;
pub mod packed;
mod profile;
mod rank;
mod session;
mod state;

pub use error::{Error, IdKind, Result};
pub use explain::{Explanation, History, TrackLabel, explain, explain_with};
pub use ids::{TrackId, UserId, validate_id};
pub use listen::{Listen, MAX_CLOCK_SKEW_MS, TrackMeta};
pub use profile::{Centroid, Centroids, MeanProfile};
pub use rank::{
    Candidate, POP_EPSILON, cosine, exclude_heard, knn_candidates, mmr, personal_popularity,
};
pub use session::{Session, sessionise};
pub use state::{Applied, Position, RecentListen, StateConfig, UserState};
