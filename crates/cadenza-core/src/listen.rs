//! Catalogue metadata and listening events, validated at the edge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, IdKind, Result, TrackId, UserId, validate_id};

/// How far in the future a listen's timestamp may lie: client clocks drift, but an event
/// from tomorrow is a bug (ms/µs confusion, a wrong year) that would corrupt sessions.
pub const MAX_CLOCK_SKEW_MS: i64 = 10 * 60 * 1000;

/// What the archive knows about a track. Field names match the index payload, so a track
/// point's payload deserialises straight into this (unknown payload keys are ignored).
/// Empty strings and a zero tempo mean "unknown", as in the proto.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackMeta {
    pub external_id: String,
    pub title: String,
    pub composer: String,
    pub era: String,
    pub ensemble: String,
    pub lead_instrument: String,
    /// Beats per minute; 0 = unknown.
    pub tempo_bpm: f32,
    pub key: String,
    /// Groups movements of one work (train/test splits must not cut through a work).
    pub work_id: String,
    pub filename: String,
    pub extra: BTreeMap<String, String>,
}

impl TrackMeta {
    /// Tempo if known (a positive, finite BPM).
    pub fn tempo(&self) -> Option<f32> {
        (self.tempo_bpm.is_finite() && self.tempo_bpm > 0.0).then_some(self.tempo_bpm)
    }

    /// A name for people: the title, else the file name, else nothing.
    pub fn display_name(&self) -> Option<&str> {
        [&self.title, &self.filename]
            .into_iter()
            .map(String::as_str)
            .find(|s| !s.is_empty())
    }
}

/// One listening event. Construct it with [`Listen::new`] so every instance is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listen {
    /// Unique per event; retries carry the same id, which is what makes them idempotent.
    pub event_id: String,
    pub user: UserId,
    pub track: TrackId,
    /// Start of the listen, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Share of the track played, 0..=1.
    pub play_fraction: f32,
    pub skipped: bool,
}

impl Listen {
    /// Validates every field. `now_ms` is the receiver's clock (a parameter, not read here,
    /// so tests and replays are deterministic).
    pub fn new(
        event_id: &str,
        user: &str,
        track: &str,
        ts_ms: i64,
        play_fraction: f32,
        skipped: bool,
        now_ms: i64,
    ) -> Result<Self> {
        validate_id(IdKind::Event, event_id)?;
        let listen = Listen {
            event_id: event_id.to_owned(),
            user: UserId::new(user)?,
            track: TrackId::new(track)?,
            ts_ms,
            play_fraction,
            skipped,
        };
        listen.validate(now_ms)?;
        Ok(listen)
    }

    /// Re-checks the invariants (for values that arrived by deserialisation, e.g. replayed
    /// from a topic). Ids were already checked by their types.
    pub fn validate(&self, now_ms: i64) -> Result<()> {
        validate_id(IdKind::Event, &self.event_id)?;
        if !(0.0..=1.0).contains(&self.play_fraction) {
            // NaN fails `contains` too.
            return Err(Error::PlayFraction(self.play_fraction));
        }
        if self.ts_ms <= 0 {
            return Err(Error::TimestampNotPositive { ts_ms: self.ts_ms });
        }
        let ahead_ms = self.ts_ms.saturating_sub(now_ms);
        if ahead_ms > MAX_CLOCK_SKEW_MS {
            return Err(Error::TimestampInFuture {
                ts_ms: self.ts_ms,
                ahead_ms,
                max_skew_ms: MAX_CLOCK_SKEW_MS,
            });
        }
        Ok(())
    }

    /// Total order used wherever listens must be sorted reproducibly: time, then event id
    /// (then the remaining fields, so even colliding event ids sort the same every time).
    pub(crate) fn order_key(&self) -> (i64, &str, &UserId, &TrackId, u32, bool) {
        (
            self.ts_ms,
            &self.event_id,
            &self.user,
            &self.track,
            self.play_fraction.to_bits(),
            self.skipped,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000_000;

    fn listen(ts: i64, frac: f32) -> Result<Listen> {
        Listen::new("e1", "u1", "t1", ts, frac, false, NOW)
    }

    #[test]
    fn accepts_a_normal_listen_and_small_clock_skew() {
        assert!(listen(NOW - 1000, 0.5).is_ok());
        assert!(listen(NOW + MAX_CLOCK_SKEW_MS, 1.0).is_ok());
        assert!(listen(1, 0.0).is_ok());
    }

    #[test]
    fn rejects_bad_play_fractions() {
        for f in [f32::NAN, -0.01, 1.01, f32::INFINITY] {
            let e = listen(NOW, f).unwrap_err();
            assert!(matches!(e, Error::PlayFraction(_)), "{f}: {e}");
            assert!(e.to_string().contains("between 0 and 1"));
        }
    }

    #[test]
    fn rejects_bad_timestamps() {
        assert!(matches!(
            listen(0, 0.5),
            Err(Error::TimestampNotPositive { .. })
        ));
        assert!(matches!(
            listen(-5, 0.5),
            Err(Error::TimestampNotPositive { .. })
        ));
        // Microseconds sent as milliseconds: ~50,000 years ahead.
        let e = listen(NOW * 1000, 0.5).unwrap_err();
        assert!(matches!(e, Error::TimestampInFuture { .. }));
        assert!(e.to_string().contains("in the future"), "{e}");
    }

    #[test]
    fn rejects_bad_ids_naming_which() {
        let e = Listen::new("e1", "u 1", "t1", NOW, 0.5, false, NOW).unwrap_err();
        assert!(e.to_string().starts_with("user id"), "{e}");
        let e = Listen::new("", "u1", "t1", NOW, 0.5, false, NOW).unwrap_err();
        assert_eq!(e.to_string(), "event id is empty");
        let e = Listen::new("e", "u1", "", NOW, 0.5, false, NOW).unwrap_err();
        assert_eq!(e.to_string(), "track id is empty");
    }

    #[test]
    fn track_meta_reads_an_index_payload_with_extra_keys() {
        let m: TrackMeta = serde_json::from_value(serde_json::json!({
            "track_id": "t1", "title": "Chaconne", "tempo_bpm": 0.0,
            "tags": [{"tag": "violin", "score": 0.9}], "extra": {"soloist": "Y"}
        }))
        .unwrap();
        assert_eq!(m.title, "Chaconne");
        assert_eq!(m.tempo(), None);
        assert_eq!(m.extra["soloist"], "Y");
        assert_eq!(m.display_name(), Some("Chaconne"));
        assert_eq!(TrackMeta::default().display_name(), None);
    }
}
