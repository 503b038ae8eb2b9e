//! Keeping a process-local index in step with the topics (the distributed mode without a
//! shared Qdrant server): Kafka is the source of truth, every index is a replay of
//! `cadenza.track.embedded` and `cadenza.user-state`.

use std::future::Future;
use std::sync::Arc;

use cadenza_bus::EventBus;
use cadenza_index::{IndexError, Point, VectorIndex};
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{TrackEmbedded, UserStateUpdated};

use crate::catalog::{TRACKS, USERS, track_point, user_point};
use crate::consumer::{self, Outcome};
use crate::shutdown::Shutdown;

/// Upsert every embedded track into `index` (consumer group `group`) until shutdown.
pub async fn tracks(
    bus: Arc<dyn EventBus>,
    index: Arc<dyn VectorIndex>,
    group: String,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let point = |payload: &[u8]| {
        TrackEmbedded::decode(payload)
            .map(|e| track_point(&e))
            .map_err(|e| format!("not a TrackEmbedded protobuf: {e}"))
    };
    follow(
        bus,
        index,
        group,
        shutdown,
        topics::TRACK_EMBEDDED,
        TRACKS,
        "materialise-tracks",
        point,
    )
    .await
}

/// Upsert every user-state snapshot into `index` (consumer group `group`) until shutdown.
pub async fn users(
    bus: Arc<dyn EventBus>,
    index: Arc<dyn VectorIndex>,
    group: String,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let point = |payload: &[u8]| {
        UserStateUpdated::decode(payload)
            .ok()
            .and_then(|e| user_point(&e))
            .ok_or_else(|| "not a UserStateUpdated with a state document".to_owned())
    };
    follow(
        bus,
        index,
        group,
        shutdown,
        topics::USER_STATE,
        USERS,
        "materialise-users",
        point,
    )
    .await
}

/// The one loop behind both: each event of `topic` becomes a point of `collection`. An event
/// that is not a point, or whose vector does not fit the collection, is dead-lettered (it can
/// never succeed); any other index error is retried.
#[allow(clippy::too_many_arguments)]
async fn follow(
    bus: Arc<dyn EventBus>,
    index: Arc<dyn VectorIndex>,
    group: String,
    shutdown: Shutdown,
    topic: &str,
    collection: &'static str,
    stage: &'static str,
    point: impl Fn(&[u8]) -> Result<Point, String>,
) -> anyhow::Result<()> {
    consumer::run(bus.as_ref(), &group, &[topic], stage, shutdown, |msg| {
        let index = index.clone();
        let point = point(&msg.payload);
        async move {
            let point = match point {
                Ok(p) => p,
                Err(reason) => {
                    return Outcome::Rejected {
                        kind: "malformed",
                        reason,
                    };
                }
            };
            match index.upsert(collection, vec![point]).await {
                Ok(()) => Outcome::Done,
                Err(e @ IndexError::DimensionMismatch { .. }) => Outcome::Rejected {
                    kind: "dimension",
                    reason: e.to_string(),
                },
                Err(e) => Outcome::Retry(e.into()),
            }
        }
    })
    .await
}

/// Runs a materialiser in a task; if it fails, logs why and triggers shutdown (a replica that
/// no longer follows the topics would serve an ever staler index). The task resolves to
/// whether the materialiser ended cleanly.
pub fn supervise(
    name: &'static str,
    task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        match task.await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(
                    materialiser = name,
                    "materialiser failed, shutting down: {e:#}"
                );
                shutdown.trigger();
                false
            }
        }
    })
}

/// Whether every supervised materialiser ended cleanly (awaits them).
pub async fn all_clean(handles: Vec<tokio::task::JoinHandle<bool>>) -> bool {
    let mut clean = true;
    for h in handles {
        clean &= matches!(h.await, Ok(true));
    }
    clean
}
