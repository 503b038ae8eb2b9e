//! A listener's state, derived only from their listen events, so replaying the listen topic
//! from the start rebuilds it exactly. It is stored as the payload of the listener's point
//! in the index's `users` collection (serde).
//!
//! # Exactly-once effect over at-least-once delivery
//!
//! Listens are keyed by user id, so all of one listener's events live in one partition, in
//! offset order. The state records, per partition, the highest offset it has applied (the
//! watermark), and it is written to the index as one document *together with* that
//! watermark; the consumer commits its offset only after the write. So:
//!
//! * crash after the write, before the commit: the events are redelivered with offsets at
//!   or below the watermark, and [`UserState::apply_at`] answers [`Applied::Duplicate`];
//! * crash before the write: neither the state nor the offset moved, the events are
//!   delivered again and applied once;
//! * the same listen published twice (a client or producer retry: same event id, a new
//!   offset): caught by the window of recently applied event ids, as long as the copy
//!   arrives within [`StateConfig::dedupe_window`] of that listener's events;
//! * a rebuild replays into an empty state: no watermarks, every event applies once.
//!
//! # Counting rules
//!
//! * `listen_count` counts every applied listen, skips included; `skip_count` the skips.
//! * `play_counts` counts only non-skipped listens (the personalised-popularity signal: a
//!   skip is not a vote for the track); skips are counted per track in `skip_counts`.
//! * Only non-skipped listens with a vector feed the profile vectors.
//!
//! # Out-of-order events
//!
//! The recent sequence is kept ordered by timestamp (ties: event id), whatever the arrival
//! order; a late event is inserted where it belongs. When the window is full, a late event
//! older than everything kept is counted but not added to the sequence (it would be evicted
//! at once). The session count is exact while the late event falls inside the kept window;
//! for one older than the window the neighbour before it is unknown, and it is counted as
//! joining the oldest kept session if within the gap of it, else as a session of its own.
//! Profile means and centroids are order-dependent in their rounding (centroids also in
//! their assignment): replaying the topic reproduces them exactly because offsets fix the
//! order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Centroids, Listen, MeanProfile, TrackId, UserId};

/// Bounds of a state document; stored in it so a loaded state keeps behaving the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateConfig {
    /// Longest recent sequence kept (the sequential ranker's input).
    pub max_recent: usize,
    /// Inactivity that closes a session, in milliseconds.
    pub session_gap_ms: u64,
    /// How many recently applied event ids are remembered for de-duplication.
    pub dedupe_window: usize,
    /// Centroids of the multi-category profile (1..=4).
    pub centroids: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            max_recent: 200,
            session_gap_ms: 30 * 60 * 1000,
            dedupe_window: 1024,
            centroids: Centroids::MAX_K,
        }
    }
}

impl StateConfig {
    pub fn session_gap(&self) -> Duration {
        Duration::from_millis(self.session_gap_ms)
    }
}

/// Where an event sits on the bus (partition and offset of the listen topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Whether an event changed the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Already applied (a redelivery or a retry): nothing changed but the watermark.
    Duplicate,
}

/// One entry of the recent sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentListen {
    pub track: TrackId,
    pub ts_ms: i64,
    /// Kept for the stable tie-break between listens with equal timestamps.
    pub event_id: String,
    pub skipped: bool,
}

/// Everything cadenza knows about one listener. See the module docs for the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub user: UserId,
    #[serde(default)]
    pub config: StateConfig,
    #[serde(default)]
    pub listen_count: u64,
    #[serde(default)]
    pub skip_count: u64,
    /// Oldest first, ordered by (timestamp, event id), at most `config.max_recent`.
    #[serde(default)]
    pub recent: VecDeque<RecentListen>,
    /// Non-skipped listens per track.
    #[serde(default)]
    pub play_counts: BTreeMap<TrackId, u32>,
    /// Skipped listens per track.
    #[serde(default)]
    pub skip_counts: BTreeMap<TrackId, u32>,
    #[serde(default)]
    pub session_count: u64,
    /// Latest listen timestamp seen (0 before any).
    #[serde(default)]
    pub last_ts_ms: i64,
    /// Event id of the last applied listen, in arrival order.
    #[serde(default)]
    pub last_event_id: String,
    /// Highest applied offset per partition of the listen topic.
    #[serde(default)]
    pub watermarks: BTreeMap<i32, i64>,
    /// Recently applied event ids, in arrival order, at most `config.dedupe_window`.
    #[serde(default)]
    pub applied_ids: VecDeque<String>,
    /// Mean of the played tracks' vectors ("comprehensive" profile).
    #[serde(default)]
    pub profile: MeanProfile,
    /// Taste centroids ("multicategory" profile).
    #[serde(default)]
    pub centroids: Centroids,
    /// Played vectors left out of the profiles (wrong dimension or not finite).
    #[serde(default)]
    pub ignored_vectors: u64,
}

impl UserState {
    /// A state document as a `users` point's payload holds it: one JSON string (what is
    /// written), or a JSON object (points written before that).
    pub fn from_stored(doc: &serde_json::Value) -> Result<UserState, serde_json::Error> {
        match doc {
            serde_json::Value::String(s) => serde_json::from_str(s),
            // From the borrowed tree: cloning a listener's whole document first cost as much
            // again.
            other => UserState::deserialize(other),
        }
    }

    pub fn new(user: UserId, config: StateConfig) -> Self {
        UserState {
            user,
            config,
            listen_count: 0,
            skip_count: 0,
            recent: VecDeque::new(),
            play_counts: BTreeMap::new(),
            skip_counts: BTreeMap::new(),
            session_count: 0,
            last_ts_ms: 0,
            last_event_id: String::new(),
            watermarks: BTreeMap::new(),
            applied_ids: VecDeque::new(),
            profile: MeanProfile::default(),
            centroids: Centroids::new(config.centroids),
            ignored_vectors: 0,
        }
    }

    /// Applies a listen that carries no bus position (e.g. from a test or a batch import):
    /// de-duplicated by event id only.
    pub fn apply(&mut self, listen: &Listen, track_vector: Option<&[f32]>) -> Applied {
        self.apply_at(listen, None, track_vector)
    }

    /// Applies a listen read from the bus at `at`. `track_vector` is the track's embedding
    /// when known (it feeds the profiles). A listen of another user is the caller's bug and
    /// is applied anyway (debug builds assert).
    pub fn apply_at(
        &mut self,
        listen: &Listen,
        at: Option<Position>,
        track_vector: Option<&[f32]>,
    ) -> Applied {
        debug_assert_eq!(
            listen.user, self.user,
            "listen applied to another user's state"
        );
        if let Some(p) = at {
            let seen = self
                .watermarks
                .get(&p.partition)
                .is_some_and(|w| p.offset <= *w);
            if seen {
                return Applied::Duplicate;
            }
            self.watermarks.insert(p.partition, p.offset);
        }
        if self.applied_ids.contains(&listen.event_id) {
            return Applied::Duplicate;
        }
        self.applied_ids.push_back(listen.event_id.clone());
        while self.applied_ids.len() > self.config.dedupe_window.max(1) {
            self.applied_ids.pop_front();
        }

        self.count_session_and_insert(listen);
        self.listen_count += 1;
        self.last_ts_ms = self.last_ts_ms.max(listen.ts_ms);
        self.last_event_id.clone_from(&listen.event_id);
        if listen.skipped {
            self.skip_count += 1;
            *self.skip_counts.entry(listen.track.clone()).or_default() += 1;
        } else {
            *self.play_counts.entry(listen.track.clone()).or_default() += 1;
            if let Some(v) = track_vector {
                let a = self.profile.add(v);
                let b = self.centroids.add(v);
                if !(a && b) {
                    self.ignored_vectors += 1;
                }
            }
        }
        Applied::Applied
    }

    /// Session bookkeeping from the listen's neighbours in time, then the insertion into
    /// the recent sequence (see the module docs for late events).
    fn count_session_and_insert(&mut self, l: &Listen) {
        let gap = i64::try_from(self.config.session_gap_ms).unwrap_or(i64::MAX);
        let key = (l.ts_ms, l.event_id.as_str());
        let pos = self
            .recent
            .partition_point(|r| (r.ts_ms, r.event_id.as_str()) < key);
        let prev = pos.checked_sub(1).map(|i| self.recent[i].ts_ms);
        let next = self.recent.get(pos).map(|r| r.ts_ms);
        let far = |a: i64, b: i64| b.saturating_sub(a) > gap;
        let delta: i64 = match (prev, next) {
            (None, None) => 1,
            (Some(p), None) => far(p, l.ts_ms).into(),
            // Exact while nothing was evicted; past the window, the approximation the
            // module docs describe (the unknown predecessor is assumed far away).
            (None, Some(n)) => far(l.ts_ms, n).into(),
            (Some(p), Some(n)) => {
                i64::from(far(p, l.ts_ms)) + i64::from(far(l.ts_ms, n)) - i64::from(far(p, n))
            }
        };
        self.session_count = self.session_count.saturating_add_signed(delta);

        let max = self.config.max_recent.max(1);
        if pos == 0 && self.recent.len() >= max {
            return; // older than everything kept in a full window
        }
        self.recent.insert(
            pos,
            RecentListen {
                track: l.track.clone(),
                ts_ms: l.ts_ms,
                event_id: l.event_id.clone(),
                skipped: l.skipped,
            },
        );
        while self.recent.len() > max {
            self.recent.pop_front();
        }
    }

    /// Changes the bounds (e.g. after a configuration change), trimming what is kept now.
    /// A smaller centroid count only limits future seeding; existing centroids stay.
    pub fn reconfigure(&mut self, config: StateConfig) {
        self.config = config;
        while self.recent.len() > config.max_recent.max(1) {
            self.recent.pop_front();
        }
        while self.applied_ids.len() > config.dedupe_window.max(1) {
            self.applied_ids.pop_front();
        }
        self.centroids.k = config.centroids.clamp(1, Centroids::MAX_K);
    }

    /// Every track the listener played or skipped (what "exclude heard" leaves out).
    pub fn heard(&self) -> BTreeSet<TrackId> {
        self.play_counts
            .keys()
            .chain(self.skip_counts.keys())
            .cloned()
            .collect()
    }

    /// The recent sequence's tracks, oldest first, skips included.
    pub fn recent_tracks(&self) -> impl Iterator<Item = &TrackId> {
        self.recent.iter().map(|r| &r.track)
    }

    /// The recent sequence without skips, oldest first: the input of sequential rankers.
    pub fn played_sequence(&self) -> impl Iterator<Item = &TrackId> {
        self.recent.iter().filter(|r| !r.skipped).map(|r| &r.track)
    }
}

#[cfg(test)]
mod tests;
