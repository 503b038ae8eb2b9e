//! Session aggregation: consumes `cadenza.listen`, keeps each listener's state (recent
//! sequence, play counts, sessions by inactivity gap, mean and multi-centroid profiles — the
//! rules live in [`cadenza_core::UserState`]) as the payload of their point in the `users`
//! collection, and announces it on `cadenza.user-state`.
//!
//! The offset of an event is committed only after the state that includes it is written, and
//! the state remembers the highest offset it applied per partition, so a crash at any point
//! loses nothing and counts nothing twice; replaying the topic into an empty index rebuilds
//! every state exactly (the rules are deterministic in the order of each user's partition).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cadenza_bus::{EventBus, Message};
use cadenza_core::{Applied, Listen, Position, StateConfig, UserId, UserState};
use cadenza_index::{Point, PointId, VectorIndex};
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{ListenRecorded, UserStateUpdated};
use cadenza_svc::catalog::{TRACKS, USERS, point_id};
use cadenza_svc::consumer::{self, Outcome};
use cadenza_svc::{Shutdown, propagation};
use serde_json::{Value, json};

pub const GROUP: &str = "cadenza-session-aggregation";

/// Most listens folded together (see [`Aggregator::handle_batch`]).
pub const MAX_BATCH: usize = 4096;

/// Listeners' states kept in memory between batches by default ([`StateCache`]).
pub const STATE_CACHE: usize = 20_000;

/// How long a listen of a track the index does not hold yet is retried before it is sent to
/// the dead-letter topic. Ingest only accepts listens of known tracks, so a miss here is a
/// materialiser still catching up (a replay, a fresh replica), not a bad event.
pub const UNKNOWN_TRACK_PATIENCE: Duration = Duration::from_secs(30);

/// The aggregation's dependencies.
#[derive(Debug)]
pub struct Aggregator {
    pub bus: Arc<dyn EventBus>,
    pub index: Arc<dyn VectorIndex>,
    /// Consumer group ([`GROUP`]; another name replays the topic from the start).
    pub group: String,
    pub config: StateConfig,
    /// Width of the track vectors (the users collection has the same).
    pub dim: usize,
    /// How long a listen of a track not in the index is retried ([`UNKNOWN_TRACK_PATIENCE`]).
    pub unknown_track_patience: Duration,
    /// Most listens folded into one write ([`MAX_BATCH`]).
    pub max_batch: usize,
    /// The event currently waiting for its track, and since when.
    waiting: Mutex<Option<((i32, i64), Instant)>>,
    /// States this replica wrote last, so a batch need not read them back.
    cache: Mutex<StateCache>,
}

impl Aggregator {
    pub fn new(
        bus: Arc<dyn EventBus>,
        index: Arc<dyn VectorIndex>,
        config: StateConfig,
        dim: usize,
    ) -> Self {
        Aggregator {
            bus,
            index,
            group: GROUP.to_owned(),
            config,
            dim,
            unknown_track_patience: UNKNOWN_TRACK_PATIENCE,
            max_batch: MAX_BATCH,
            waiting: Mutex::new(None),
            cache: Mutex::new(StateCache::new(STATE_CACHE)),
        }
    }

    /// Keep at most `states` listeners' states in memory between batches (0: read every
    /// state from the index each time).
    pub fn with_state_cache(self, states: usize) -> Self {
        *self.cache.lock().expect("not poisoned") = StateCache::new(states);
        self
    }

    /// Consume until shutdown, in batches of what is already waiting (at most
    /// `max_batch`).
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let me = Arc::new(self);
        consumer::run_batched(
            me.bus.as_ref(),
            &me.group,
            &[topics::LISTEN],
            "session-aggregation",
            shutdown,
            me.max_batch,
            |batch| {
                let me = me.clone();
                async move { me.handle_batch(&batch).await }
            },
        )
        .await
    }

    /// Process several events of the listen topic together: one index read for their tracks,
    /// one for their listeners, one write of every listener touched, one announcement per
    /// listener — the same states as [`Aggregator::handle`] one by one (the rules run in
    /// order per listener), at a fraction of the round trips. A listen of a track not in the
    /// index sends the batch down the one-by-one path, which knows how to wait for it.
    pub async fn handle_batch(&self, msgs: &[Message]) -> Vec<Outcome> {
        use tracing::Instrument as _;
        let span = tracing::info_span!("aggregate_listens", n = msgs.len());
        if let Some(first) = msgs.first() {
            propagation::set_parent(&span, &first.headers);
        }
        self.batch(msgs).instrument(span).await
    }

    async fn batch(&self, msgs: &[Message]) -> Vec<Outcome> {
        let now = now_ms();
        let mut outcomes: Vec<Option<Outcome>> = msgs.iter().map(|_| None).collect();
        let mut valid = Vec::new();
        for (i, msg) in msgs.iter().enumerate() {
            let listen = match ListenRecorded::decode(msg.payload.as_slice()) {
                Ok(l) => l,
                Err(e) => {
                    outcomes[i] = Some(Outcome::Rejected {
                        kind: "malformed",
                        reason: format!("not a ListenRecorded protobuf: {e}"),
                    });
                    continue;
                }
            };
            match to_listen(&listen, now) {
                Ok(l) => valid.push((i, l)),
                Err(reason) => {
                    outcomes[i] = Some(Outcome::Rejected {
                        kind: "invalid",
                        reason,
                    });
                }
            }
        }
        if !valid.is_empty() {
            match self.apply_batch(msgs, &valid).await {
                Ok(true) => {
                    for (i, _) in &valid {
                        outcomes[*i] = Some(Outcome::Done);
                    }
                }
                Ok(false) => {
                    // A track the index lacks: one by one, in order, so the waiting and the
                    // dead-lettering work as for single events.
                    let mut out = Vec::with_capacity(msgs.len());
                    let mut blocked = false;
                    for (i, msg) in msgs.iter().enumerate() {
                        let o = match outcomes[i].take() {
                            Some(o) => o,
                            None if blocked => Outcome::Retry(anyhow::anyhow!(
                                "an earlier listen of this batch is waiting"
                            )),
                            None => self.handle(msg).await,
                        };
                        blocked |= matches!(o, Outcome::Retry(_));
                        out.push(o);
                    }
                    return out;
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    for (i, _) in &valid {
                        outcomes[*i] = Some(Outcome::Retry(anyhow::anyhow!("{why}")));
                    }
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every event has an outcome"))
            .collect()
    }

    /// The batch's valid listens applied: `Ok(false)` (nothing written) if one names a track
    /// the index does not hold.
    async fn apply_batch(
        &self,
        msgs: &[Message],
        valid: &[(usize, Listen)],
    ) -> anyhow::Result<bool> {
        let mut track_ids: Vec<PointId> = valid
            .iter()
            .map(|(_, l)| point_id(l.track.as_str()))
            .collect();
        track_ids.sort_unstable();
        track_ids.dedup();
        let vectors: HashMap<PointId, Vec<f32>> = self
            .index
            .get(TRACKS, &track_ids, true)
            .await?
            .into_iter()
            .map(|p| (p.id, p.vector))
            .collect();
        if vectors.len() < track_ids.len() {
            return Ok(false);
        }
        *self.waiting.lock().expect("not poisoned") = None;
        let mut user_ids: Vec<PointId> = valid
            .iter()
            .map(|(_, l)| point_id(l.user.as_str()))
            .collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        // States this replica wrote itself come from memory, unless another consumer may
        // have written since (see `StateCache`); the rest are read from the index.
        let mut states: HashMap<PointId, UserState> = {
            let mut cache = self.cache.lock().expect("not poisoned");
            cache.follow(msgs.iter().map(|m| (m.partition, m.offset)));
            valid
                .iter()
                .filter_map(|(i, l)| {
                    let id = point_id(l.user.as_str());
                    cache.take(id, msgs[*i].partition).map(|s| (id, s))
                })
                .collect()
        };
        let missing: Vec<PointId> = user_ids
            .iter()
            .copied()
            .filter(|id| !states.contains_key(id))
            .collect();
        if !missing.is_empty() {
            for p in self.index.get(USERS, &missing, false).await? {
                states.insert(p.id, state_of(&p.payload)?);
            }
        }
        // Listeners in the order of their first listen here; each one's last event id.
        let mut touched: Vec<PointId> = Vec::new();
        let mut last_event: HashMap<PointId, String> = HashMap::new();
        for (i, l) in valid {
            let id = point_id(l.user.as_str());
            let at = Position {
                partition: msgs[*i].partition,
                offset: msgs[*i].offset,
            };
            let state = states
                .entry(id)
                .or_insert_with(|| UserState::new(l.user.clone(), self.config));
            let vector = vectors.get(&point_id(l.track.as_str())).map(Vec::as_slice);
            if state.apply_at(l, Some(at), vector) == Applied::Duplicate {
                // Re-announced below all the same (see `apply`).
                tracing::debug!(event_id = %l.event_id, "duplicate listen: state re-announced");
            }
            if last_event.insert(id, l.event_id.clone()).is_none() {
                touched.push(id);
            }
        }
        let mut points = Vec::with_capacity(touched.len());
        let mut updates = Vec::with_capacity(touched.len());
        for id in &touched {
            let state = &states[id];
            let (point, doc) = user_point(state, self.dim)?;
            points.push(point);
            updates.push(UserStateUpdated {
                user_id: state.user.to_string(),
                listen_count: state.listen_count,
                last_event_id: last_event.remove(id).unwrap_or_default(),
                state_json: doc,
            });
        }
        if let Err(e) = self.index.upsert(USERS, points).await {
            // Whether the write landed is unknown: read every state back next time.
            self.cache.lock().expect("not poisoned").clear();
            return Err(e.into());
        }
        {
            let mut cache = self.cache.lock().expect("not poisoned");
            let partition_of: HashMap<PointId, i32> = valid
                .iter()
                .map(|(i, l)| (point_id(l.user.as_str()), msgs[*i].partition))
                .collect();
            for (id, state) in states {
                if let Some(p) = partition_of.get(&id) {
                    cache.put(id, *p, state);
                }
            }
            cache.processed(msgs.iter().map(|m| (m.partition, m.offset)));
        }
        // One announcement per listener, all in flight together (each listener's come from
        // one batch at a time, so they stay in order per key).
        let headers = propagation::inject_current();
        let mut sends = tokio::task::JoinSet::new();
        for update in updates {
            let (bus, headers) = (self.bus.clone(), headers.clone());
            sends.spawn(async move {
                bus.publish(
                    topics::USER_STATE,
                    update.user_id.as_bytes(),
                    update.encode_to_vec(),
                    headers,
                )
                .await
            });
        }
        while let Some(r) = sends.join_next().await {
            r??;
        }
        Ok(true)
    }

    /// Process one event of the listen topic.
    pub async fn handle(&self, msg: &Message) -> Outcome {
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
        let listen = match to_listen(&listen, now_ms()) {
            Ok(l) => l,
            Err(reason) => {
                return Outcome::Rejected {
                    kind: "invalid",
                    reason,
                };
            }
        };
        let at = Position {
            partition: msg.partition,
            offset: msg.offset,
        };
        match self.apply(&listen, at).await {
            Ok(o) => o,
            Err(e) => Outcome::Retry(e),
        }
    }

    async fn apply(&self, l: &Listen, at: Position) -> anyhow::Result<Outcome> {
        let track = self
            .index
            .get(TRACKS, &[point_id(l.track.as_str())], true)
            .await?;
        let Some(track) = track.into_iter().next() else {
            return Ok(self.unknown_track(l, at));
        };
        *self.waiting.lock().expect("not poisoned") = None;
        // Written here without the cache: its copy would be stale.
        self.cache
            .lock()
            .expect("not poisoned")
            .forget(point_id(l.user.as_str()));
        let mut state = self.load(&l.user).await?;
        if state.apply_at(l, Some(at), Some(&track.vector)) == Applied::Duplicate {
            // Counted already. It is redelivered because its offset was not committed, so the
            // crash may have come between the write and the announcement: write and announce
            // the (unchanged) state again, or the replicas that materialise
            // `cadenza.user-state` would keep the state before it for good.
            tracing::debug!(event_id = %l.event_id, "duplicate listen: state re-announced");
        }
        let (point, doc) = user_point(&state, self.dim)?;
        self.index.upsert(USERS, vec![point]).await?;
        let update = UserStateUpdated {
            user_id: l.user.to_string(),
            listen_count: state.listen_count,
            last_event_id: l.event_id.clone(),
            state_json: doc,
        };
        self.bus
            .publish(
                topics::USER_STATE,
                l.user.as_str().as_bytes(),
                update.encode_to_vec(),
                propagation::inject_current(),
            )
            .await?;
        Ok(Outcome::Done)
    }

    fn unknown_track(&self, l: &Listen, at: Position) -> Outcome {
        let key = (at.partition, at.offset);
        let mut waiting = self.waiting.lock().expect("not poisoned");
        let since = match *waiting {
            Some((k, t)) if k == key => t,
            _ => {
                *waiting = Some((key, Instant::now()));
                Instant::now()
            }
        };
        if since.elapsed() < self.unknown_track_patience {
            return Outcome::Retry(anyhow::anyhow!("track `{}` not in the index yet", l.track));
        }
        *waiting = None;
        Outcome::Rejected {
            kind: "unknown_track",
            reason: format!(
                "unknown track id `{}`: not in the catalogue after {}s",
                l.track,
                self.unknown_track_patience.as_secs()
            ),
        }
    }

    /// The stored state of `user`, or a fresh one.
    async fn load(&self, user: &UserId) -> anyhow::Result<UserState> {
        let stored = self
            .index
            .get(USERS, &[point_id(user.as_str())], false)
            .await?;
        Ok(match stored.into_iter().next() {
            Some(p) => state_of(&p.payload)?,
            None => UserState::new(user.clone(), self.config),
        })
    }
}

/// The states this replica wrote last, by listener, each with the partition of its events.
///
/// A cached state is exactly the stored one as long as nobody else has applied events of its
/// partition since: every listener's events live in one partition, in order. The cache sees
/// that in the offsets it is given: a batch that does not start where this replica's last
/// batch of that partition ended (a rebalance gave the partition to another consumer and
/// back, or a retry rewound it) drops the partition's states. A failed write drops all.
#[derive(Debug)]
struct StateCache {
    capacity: usize,
    states: HashMap<PointId, (i32, UserState)>,
    /// Per partition, the offset this replica processes next.
    next: HashMap<i32, i64>,
}

impl StateCache {
    fn new(capacity: usize) -> Self {
        StateCache {
            capacity,
            states: HashMap::new(),
            next: HashMap::new(),
        }
    }

    /// Before a batch: drop the states of every partition whose events do not continue
    /// where this replica left off.
    fn follow(&mut self, offsets: impl Iterator<Item = (i32, i64)>) {
        let mut firsts: HashMap<i32, i64> = HashMap::new();
        for (p, o) in offsets {
            firsts.entry(p).or_insert(o);
        }
        for (p, first) in firsts {
            if self.next.get(&p).is_some_and(|n| *n != first) {
                self.states.retain(|_, (q, _)| *q != p);
                self.next.remove(&p);
            }
        }
    }

    /// After a batch was written: where each partition continues.
    fn processed(&mut self, offsets: impl Iterator<Item = (i32, i64)>) {
        for (p, o) in offsets {
            let n = self.next.entry(p).or_insert(o + 1);
            *n = (*n).max(o + 1);
        }
    }

    /// The cached state of a listener whose event came from `partition` (removed: it is put
    /// back once its new version is written).
    fn take(&mut self, id: PointId, partition: i32) -> Option<UserState> {
        match self.states.remove(&id) {
            Some((p, s)) if p == partition => Some(s),
            _ => None,
        }
    }

    fn put(&mut self, id: PointId, partition: i32, state: UserState) {
        if self.capacity == 0 {
            return;
        }
        if self.states.len() >= self.capacity && !self.states.contains_key(&id) {
            // Bounded memory, simply: start over (the next batches read from the index).
            self.states.clear();
        }
        self.states.insert(id, (partition, state));
    }

    fn forget(&mut self, id: PointId) {
        self.states.remove(&id);
    }

    fn clear(&mut self) {
        self.states.clear();
        self.next.clear();
    }
}

/// The state document inside a `users` point's payload.
///
/// Written as one JSON string (see [`user_point`]); points written before that carry it as a
/// JSON object, which is still read.
pub fn state_of(payload: &cadenza_index::Payload) -> anyhow::Result<UserState> {
    let doc = payload
        .get("state")
        .ok_or_else(|| anyhow::anyhow!("user point without a state document"))?;
    Ok(UserState::from_stored(doc)?)
}

/// The `users` point of a state, and the `{"vector", "payload"}` document that
/// `cadenza.user-state` carries (materialisers rebuild the identical point from it).
pub fn user_point(state: &UserState, dim: usize) -> anyhow::Result<(Point, Vec<u8>)> {
    let (vector, has_profile) = match state.profile.get() {
        Some(v) if v.iter().any(|x| *x != 0.0) => (v.to_vec(), true),
        // Cosine needs a non-zero vector; a listener with only skips gets a placeholder
        // that `has_profile: false` tells readers to ignore.
        _ => {
            let mut v = vec![0.0; dim.max(1)];
            v[0] = 1.0;
            (v, false)
        }
    };
    let payload = json!({
        "user_id": state.user.as_str(),
        "has_profile": has_profile,
        "listen_count": state.listen_count,
        // One string, not a JSON tree: the index never looks inside it, and building and
        // walking a `Value` tree per write and per read was most of the listen path's
        // allocation (BENCHMARKS.md, "listen path").
        "state": serde_json::to_string(state)?,
    });
    // Serialised from the f32s themselves: through `json!` each would be written as the
    // 17-digit decimal of an f64.
    #[derive(serde::Serialize)]
    struct Announced<'a> {
        vector: &'a [f32],
        payload: &'a Value,
    }
    let doc = serde_json::to_vec(&Announced {
        vector: &vector,
        payload: &payload,
    })?;
    let Value::Object(payload) = payload else {
        unreachable!("json! object")
    };
    Ok((
        Point::new(point_id(state.user.as_str()), vector).with_payload(payload),
        doc,
    ))
}

/// The domain listen of a wire event, or a sentence saying what is wrong with it.
pub fn to_listen(l: &ListenRecorded, now_ms: i64) -> Result<Listen, String> {
    Listen::new(
        &l.event_id,
        &l.user_id,
        &l.track_id,
        l.timestamp_ms,
        l.play_fraction,
        l.skipped,
        now_ms,
    )
    .map_err(|e| e.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
