//! Session aggregation: consumes `cadenza.listen`, keeps each listener's state (recent
//! sequence, play counts, sessions by inactivity gap, mean profile vector) as the payload of
//! their point in the `users` collection, and announces it on `cadenza.user-state`.
//!
//! The offset of an event is committed only after the state that includes it is written, and
//! the state remembers what it has applied, so a crash at any point loses nothing and counts
//! nothing twice.

pub mod state;

use std::sync::Arc;

use cadenza_bus::{EventBus, Message};
use cadenza_index::{Point, VectorIndex};
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{ListenRecorded, UserStateUpdated};
use cadenza_svc::catalog::{TRACKS, USERS, point_id};
use cadenza_svc::consumer::{self, Outcome};
use cadenza_svc::{Shutdown, propagation};
use serde_json::json;

pub use state::{Applied, ListenEvent, Position, StateConfig, UserState};

pub const GROUP: &str = "cadenza-session-aggregation";

/// The aggregation's dependencies.
#[derive(Debug, Clone)]
pub struct Aggregator {
    pub bus: Arc<dyn EventBus>,
    pub index: Arc<dyn VectorIndex>,
    pub config: StateConfig,
    /// Width of the track vectors (the users collection has the same).
    pub dim: usize,
}

impl Aggregator {
    /// Consume until shutdown.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let me = Arc::new(self);
        consumer::run(me.bus.as_ref(), GROUP, &[topics::LISTEN], "session-aggregation", shutdown, |msg| {
            let me = me.clone();
            async move { me.handle(&msg).await }
        })
        .await
    }

    async fn handle(&self, msg: &Message) -> Outcome {
        let span = tracing::info_span!("aggregate_listen", offset = msg.offset);
        propagation::set_parent(&span, &msg.headers);
        let _e = span.enter();
        let listen = match ListenRecorded::decode(msg.payload.as_slice()) {
            Ok(l) => l,
            Err(e) => {
                return Outcome::Rejected {
                    kind: "malformed",
                    reason: format!("not a ListenRecorded protobuf: {e}"),
                };
            }
        };
        if let Err(reason) = validate(&listen) {
            return Outcome::Rejected { kind: "invalid", reason };
        }
        match self.apply(&listen, Position { partition: msg.partition, offset: msg.offset }).await {
            Ok(o) => o,
            Err(e) => Outcome::Retry(e),
        }
    }

    async fn apply(&self, l: &ListenRecorded, at: Position) -> anyhow::Result<Outcome> {
        let track = self.index.get(TRACKS, &[point_id(&l.track_id)], true).await?;
        let Some(track) = track.into_iter().next() else {
            return Ok(Outcome::Rejected {
                kind: "unknown_track",
                reason: format!("unknown track id `{}` (not in the catalogue)", l.track_id),
            });
        };
        let uid = point_id(&l.user_id);
        let mut state = match self.index.get(USERS, &[uid], false).await?.into_iter().next() {
            Some(p) => serde_json::from_value(p.payload.get("state").cloned().unwrap_or_default())
                .unwrap_or_else(|_| UserState::new(&l.user_id)),
            None => UserState::new(&l.user_id),
        };
        let event = ListenEvent {
            event_id: l.event_id.clone(),
            track_id: l.track_id.clone(),
            ts_ms: l.timestamp_ms,
            play_fraction: l.play_fraction,
            skipped: l.skipped,
        };
        if state.apply(&event, Some(at), Some(&track.vector), &self.config) == Applied::Duplicate {
            tracing::debug!(event_id = %l.event_id, "duplicate listen ignored");
            return Ok(Outcome::Done);
        }
        let state_json = serde_json::to_value(&state)?;
        let (vector, has_profile) = match state.profile() {
            Some(v) if v.iter().any(|x| *x != 0.0) => (v, true),
            // Cosine needs a non-zero vector; a user without plays gets a placeholder.
            _ => {
                let mut v = vec![0.0; self.dim];
                v[0] = 1.0;
                (v, false)
            }
        };
        let payload = json!({"user_id": l.user_id, "has_profile": has_profile, "state": state_json});
        let doc = serde_json::to_vec(&json!({"vector": vector, "payload": payload}))?;
        let point = Point::new(uid, vector).with_payload(payload.as_object().cloned().unwrap_or_default());
        self.index.upsert(USERS, vec![point]).await?;
        let update = UserStateUpdated {
            user_id: l.user_id.clone(),
            listen_count: state.listen_count,
            last_event_id: l.event_id.clone(),
            state_json: doc,
        };
        self.bus
            .publish(topics::USER_STATE, l.user_id.as_bytes(), update.encode_to_vec(), propagation::inject_current())
            .await?;
        Ok(Outcome::Done)
    }
}

/// Checks an event's fields, with a sentence for the dead-letter reason.
pub fn validate(l: &ListenRecorded) -> Result<(), String> {
    let id_ok = |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    if !id_ok(&l.user_id) {
        return Err(format!("invalid user id {:?} (1-128 of letters, digits, . _ : -)", l.user_id));
    }
    if !id_ok(&l.track_id) {
        return Err(format!("invalid track id {:?}", l.track_id));
    }
    if l.event_id.is_empty() {
        return Err("listen without event id".into());
    }
    if !(0.0..=1.0).contains(&l.play_fraction) {
        return Err(format!("play fraction {} outside 0..1", l.play_fraction));
    }
    if l.timestamp_ms <= 0 {
        return Err(format!("timestamp {} is not a time", l.timestamp_ms));
    }
    Ok(())
}
