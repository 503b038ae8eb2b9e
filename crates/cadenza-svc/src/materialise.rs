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

/// Most events of a topic turned into points by one index write.
pub const MAX_BATCH: usize = 256;

/// The one loop behind both: each event of `topic` becomes a point of `collection`, a batch
/// of what is waiting at a time in one write (one flush instead of one per event). An event
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
    consumer::run_batched(
        bus.as_ref(),
        &group,
        &[topic],
        stage,
        shutdown,
        MAX_BATCH,
        |batch| {
            let index = index.clone();
            let points: Vec<Result<Point, String>> =
                batch.iter().map(|m| point(&m.payload)).collect();
            async move { upsert_batch(index.as_ref(), collection, points).await }
        },
    )
    .await
}

/// The outcome of each event of a batch: the points written together (the last of several
/// for one id wins, as one at a time); when that write is refused for a vector that does not
/// fit, one at a time, so only the events at fault are dead-lettered.
async fn upsert_batch(
    index: &dyn VectorIndex,
    collection: &str,
    points: Vec<Result<Point, String>>,
) -> Vec<Outcome> {
    let mut latest = std::collections::HashMap::new();
    for (i, p) in points.iter().enumerate() {
        if let Ok(p) = p {
            latest.insert(p.id, i);
        }
    }
    let write: Vec<Point> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Ok(p) if latest.get(&p.id) == Some(&i) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let one = |r: Result<(), IndexError>| match r {
        Ok(()) => Outcome::Done,
        Err(e @ IndexError::DimensionMismatch { .. }) => Outcome::Rejected {
            kind: "dimension",
            reason: e.to_string(),
        },
        Err(e) => Outcome::Retry(e.into()),
    };
    let rejected = |reason: &String| Outcome::Rejected {
        kind: "malformed",
        reason: reason.clone(),
    };
    let batch = index.upsert(collection, write).await;
    match batch {
        Ok(()) => points
            .iter()
            .map(|p| match p {
                Ok(_) => Outcome::Done,
                Err(reason) => rejected(reason),
            })
            .collect(),
        Err(IndexError::DimensionMismatch { .. }) => {
            let mut out = Vec::with_capacity(points.len());
            for p in points {
                out.push(match p {
                    Ok(p) => one(index.upsert(collection, vec![p]).await),
                    Err(reason) => rejected(&reason),
                });
            }
            out
        }
        Err(e) => {
            let why = format!("{e:#}");
            points
                .iter()
                .map(|p| match p {
                    Ok(_) => Outcome::Retry(anyhow::anyhow!("{why}")),
                    Err(reason) => rejected(reason),
                })
                .collect()
        }
    }
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

#[cfg(test)]
mod tests {
    use cadenza_index::MemoryIndex;

    use super::*;
    use crate::catalog::tracks_spec;

    fn point(id: u64, vector: Vec<f32>, tag: &str) -> Point {
        let mut payload = serde_json::Map::new();
        payload.insert("tag".into(), serde_json::json!(tag));
        Point::new(id, vector).with_payload(payload)
    }

    #[tokio::test]
    async fn a_batch_is_written_at_once_and_only_its_bad_events_are_refused() {
        let index = MemoryIndex::new();
        index.ensure_collection(&tracks_spec(2)).await.unwrap();
        let out = upsert_batch(
            &index,
            TRACKS,
            vec![
                Ok(point(1, vec![1.0, 0.0], "first")),
                Err("not a TrackEmbedded protobuf".into()),
                Ok(point(2, vec![0.0, 1.0], "two")),
                Ok(point(1, vec![0.0, 1.0], "second")),
            ],
        )
        .await;
        assert!(matches!(out[0], Outcome::Done), "{out:?}");
        assert!(
            matches!(
                out[1],
                Outcome::Rejected {
                    kind: "malformed",
                    ..
                }
            ),
            "{out:?}"
        );
        assert!(
            matches!(out[2..], [Outcome::Done, Outcome::Done]),
            "{out:?}"
        );
        let got = index.get(TRACKS, &[1, 2], false).await.unwrap();
        let tag = |id| {
            got.iter()
                .find(|p| p.id == id)
                .map(|p| p.payload["tag"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            tag(1).as_deref(),
            Some("second"),
            "the later event of an id wins"
        );
        assert_eq!(tag(2).as_deref(), Some("two"));

        // A vector of the wrong width refuses the batch write; one at a time, only it fails.
        let out = upsert_batch(
            &index,
            TRACKS,
            vec![
                Ok(point(3, vec![1.0, 0.0], "three")),
                Ok(point(4, vec![1.0, 0.0, 0.0], "too wide")),
            ],
        )
        .await;
        assert!(matches!(out[0], Outcome::Done), "{out:?}");
        assert!(
            matches!(
                out[1],
                Outcome::Rejected {
                    kind: "dimension",
                    ..
                }
            ),
            "{out:?}"
        );
        assert_eq!(index.get(TRACKS, &[3, 4], false).await.unwrap().len(), 1);
    }
}
