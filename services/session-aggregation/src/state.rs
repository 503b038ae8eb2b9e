//! A listener's state, derived only from their listen events — so replaying the topic
//! rebuilds it exactly.
//!
//! Exactly-once *effect* over at-least-once delivery: each state remembers, per partition of
//! the listen topic, the highest offset already applied. A user's events all live in one
//! partition (keyed by user id) in offset order, so a redelivered event (offset ≤ watermark)
//! is recognised and ignored. Event ids are also remembered for a bounded window so the
//! same listen published twice (a client retry) counts once.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Settings of the aggregation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateConfig {
    /// Longest recent sequence kept.
    pub max_recent: usize,
    /// Inactivity that closes a session, in milliseconds.
    pub session_gap_ms: i64,
    /// How many recent event ids are remembered for de-duplication.
    pub dedupe_window: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            max_recent: 200,
            session_gap_ms: 30 * 60 * 1000,
            dedupe_window: 512,
        }
    }
}

/// One listen, as the aggregation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenEvent {
    pub event_id: String,
    pub track_id: String,
    pub ts_ms: i64,
    pub play_fraction: f32,
    pub skipped: bool,
}

/// Where an event came from on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Already applied (redelivery or retry): nothing changed.
    Duplicate,
}

/// The state document (stored as the payload of the user's point).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: String,
    pub listen_count: u64,
    pub skip_count: u64,
    /// Most recent tracks, oldest first, skips included (a skip is a signal too).
    pub recent: VecDeque<String>,
    /// Non-skipped plays per track.
    pub play_counts: BTreeMap<String, u32>,
    pub session_count: u64,
    pub last_ts_ms: i64,
    pub last_event_id: String,
    /// Highest applied offset per partition of the listen topic.
    pub watermarks: BTreeMap<i32, i64>,
    recent_event_ids: VecDeque<String>,
    /// Sum of the vectors of non-skipped plays and their count: the mean profile.
    pub profile_sum: Vec<f32>,
    pub profile_n: u64,
}

impl UserState {
    pub fn new(user_id: impl Into<String>) -> Self {
        UserState {
            user_id: user_id.into(),
            ..Default::default()
        }
    }

    /// Apply one event. `vector` is the track's embedding if known (it feeds the profile).
    pub fn apply(
        &mut self,
        e: &ListenEvent,
        at: Option<Position>,
        vector: Option<&[f32]>,
        cfg: &StateConfig,
    ) -> Applied {
        if let Some(p) = at
            && self.watermarks.get(&p.partition).is_some_and(|w| p.offset <= *w)
        {
            return Applied::Duplicate;
        }
        if self.recent_event_ids.iter().any(|id| id == &e.event_id) {
            if let Some(p) = at {
                self.watermarks.insert(p.partition, p.offset);
            }
            return Applied::Duplicate;
        }
        if let Some(p) = at {
            self.watermarks.insert(p.partition, p.offset);
        }
        self.recent_event_ids.push_back(e.event_id.clone());
        while self.recent_event_ids.len() > cfg.dedupe_window {
            self.recent_event_ids.pop_front();
        }
        // Sessions: a new one starts after an inactivity gap (or with the first event).
        if self.listen_count == 0 || e.ts_ms - self.last_ts_ms > cfg.session_gap_ms {
            self.session_count += 1;
        }
        self.listen_count += 1;
        self.last_ts_ms = self.last_ts_ms.max(e.ts_ms);
        self.last_event_id = e.event_id.clone();
        self.recent.push_back(e.track_id.clone());
        while self.recent.len() > cfg.max_recent {
            self.recent.pop_front();
        }
        if e.skipped {
            self.skip_count += 1;
        } else {
            *self.play_counts.entry(e.track_id.clone()).or_default() += 1;
            if let Some(v) = vector {
                if self.profile_sum.len() != v.len() {
                    self.profile_sum = vec![0.0; v.len()];
                    self.profile_n = 0;
                }
                for (s, x) in self.profile_sum.iter_mut().zip(v) {
                    *s += *x;
                }
                self.profile_n += 1;
            }
        }
        Applied::Applied
    }

    /// Mean of the played tracks' vectors, if any.
    pub fn profile(&self) -> Option<Vec<f32>> {
        (self.profile_n > 0).then(|| self.profile_sum.iter().map(|s| s / self.profile_n as f32).collect())
    }

    /// Tracks the listener has heard (played or skipped).
    pub fn heard(&self) -> impl Iterator<Item = &String> {
        self.play_counts.keys().chain(self.recent.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(i: usize, track: &str, ts: i64, skipped: bool) -> ListenEvent {
        ListenEvent {
            event_id: format!("e{i}"),
            track_id: track.into(),
            ts_ms: ts,
            play_fraction: if skipped { 0.1 } else { 1.0 },
            skipped,
        }
    }

    #[test]
    fn counts_sessions_and_profile() {
        let cfg = StateConfig::default();
        let mut s = UserState::new("u");
        let pos = |o| Some(Position { partition: 0, offset: o });
        s.apply(&ev(0, "a", 1_000, false), pos(0), Some(&[1.0, 0.0]), &cfg);
        s.apply(&ev(1, "b", 2_000, true), pos(1), Some(&[0.0, 1.0]), &cfg);
        s.apply(&ev(2, "a", 1_000 + cfg.session_gap_ms + 5_000, false), pos(2), Some(&[1.0, 0.0]), &cfg);
        assert_eq!((s.listen_count, s.skip_count, s.session_count), (3, 1, 2));
        assert_eq!(s.play_counts["a"], 2);
        assert_eq!(s.profile().unwrap(), vec![1.0, 0.0]);
        // Redelivery of offset 1 and a retried event id change nothing.
        assert_eq!(s.apply(&ev(1, "b", 2_000, true), pos(1), None, &cfg), Applied::Duplicate);
        assert_eq!(s.apply(&ev(2, "a", 9, false), pos(7), None, &cfg), Applied::Duplicate);
        assert_eq!(s.listen_count, 3);
    }

    proptest! {
        /// At-least-once delivery (any prefix redelivered, in order) gives the same state
        /// as exactly-once delivery.
        #[test]
        fn redelivery_is_idempotent(n in 1usize..40, replays in proptest::collection::vec(0usize..40, 0..20)) {
            let cfg = StateConfig::default();
            let events: Vec<ListenEvent> = (0..n).map(|i| ev(i, ["a", "b", "c"][i % 3], i as i64 * 1000, i % 5 == 0)).collect();
            let mut once = UserState::new("u");
            for (i, e) in events.iter().enumerate() {
                once.apply(e, Some(Position { partition: 0, offset: i as i64 }), Some(&[i as f32]), &cfg);
            }
            let mut twice = UserState::new("u");
            let mut delivered = 0usize;
            for r in replays.iter().map(|r| r % n) {
                // Deliver up to r, then "crash" and redeliver from an earlier point.
                for (i, e) in events.iter().enumerate().take(r + 1).skip(delivered.saturating_sub(3)) {
                    twice.apply(e, Some(Position { partition: 0, offset: i as i64 }), Some(&[i as f32]), &cfg);
                }
                delivered = delivered.max(r + 1);
            }
            for (i, e) in events.iter().enumerate() {
                twice.apply(e, Some(Position { partition: 0, offset: i as i64 }), Some(&[i as f32]), &cfg);
            }
            prop_assert_eq!(once, twice);
        }
    }
}
