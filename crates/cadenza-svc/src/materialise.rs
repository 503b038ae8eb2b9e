//! Keeping a process-local index in step with the topics (the distributed mode without a
//! shared Qdrant server, and `cadenza rebuild`): Kafka is the source of truth, every index is
//! a replay of `cadenza.track.embedded` and `cadenza.user-state`.

use std::sync::Arc;

use cadenza_bus::EventBus;
use cadenza_index::VectorIndex;
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{TrackEmbedded, UserStateUpdated};

use crate::catalog::{TRACKS, USERS, track_point, user_point};
use crate::consumer::{self, Outcome};
use crate::shutdown::Shutdown;

/// Upsert every embedded track into `index` (group `group`) until shutdown.
pub async fn tracks(
    bus: Arc<dyn EventBus>,
    index: Arc<dyn VectorIndex>,
    group: &'static str,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    consumer::run(
        bus.as_ref(),
        group,
        &[topics::TRACK_EMBEDDED],
        "materialise-tracks",
        shutdown,
        |msg| {
            let index = index.clone();
            async move {
                match TrackEmbedded::decode(msg.payload.as_slice()) {
                    Err(e) => Outcome::Rejected {
                        kind: "malformed",
                        reason: format!("not a TrackEmbedded protobuf: {e}"),
                    },
                    Ok(ev) => match index.upsert(TRACKS, vec![track_point(&ev)]).await {
                        Ok(()) => Outcome::Done,
                        Err(e @ cadenza_index::IndexError::DimensionMismatch { .. }) => {
                            Outcome::Rejected {
                                kind: "dimension",
                                reason: e.to_string(),
                            }
                        }
                        Err(e) => Outcome::Retry(e.into()),
                    },
                }
            }
        },
    )
    .await
}

/// Upsert every user-state snapshot into `index` until shutdown.
pub async fn users(
    bus: Arc<dyn EventBus>,
    index: Arc<dyn VectorIndex>,
    group: &'static str,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    consumer::run(
        bus.as_ref(),
        group,
        &[topics::USER_STATE],
        "materialise-users",
        shutdown,
        |msg| {
            let index = index.clone();
            async move {
                let point = UserStateUpdated::decode(msg.payload.as_slice())
                    .ok()
                    .and_then(|e| user_point(&e));
                match point {
                    None => Outcome::Rejected {
                        kind: "malformed",
                        reason: "not a UserStateUpdated with a state document".into(),
                    },
                    Some(p) => match index.upsert(USERS, vec![p]).await {
                        Ok(()) => Outcome::Done,
                        Err(e) => Outcome::Retry(e.into()),
                    },
                }
            }
        },
    )
    .await
}
