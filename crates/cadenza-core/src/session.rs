//! Sessionisation: a listener's listens split wherever they paused longer than a gap.

use std::time::Duration;

use crate::{Listen, UserId};

/// Consecutive listens of one listener with no pause longer than the gap between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: UserId,
    /// Timestamp of the first listen.
    pub start_ms: i64,
    /// Timestamp of the last listen (its start; durations are not known here).
    pub end_ms: i64,
    /// In time order, ties broken by event id.
    pub listens: Vec<Listen>,
}

/// Splits listens into sessions by inactivity `gap`: two neighbouring listens belong to the
/// same session when their start times differ by at most `gap`.
///
/// Input order does not matter: listens are sorted by listener, time, then event id (a
/// stable tie-break, so the same events always give the same sessions). Sessions never mix
/// listeners; they come out grouped by listener, then in time order.
pub fn sessionise(listens: &[Listen], gap: Duration) -> Vec<Session> {
    let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
    let mut sorted: Vec<&Listen> = listens.iter().collect();
    sorted.sort_by(|a, b| (&a.user, a.order_key()).cmp(&(&b.user, b.order_key())));
    let mut sessions: Vec<Session> = Vec::new();
    for l in sorted {
        match sessions.last_mut() {
            Some(s) if s.user == l.user && l.ts_ms.saturating_sub(s.end_ms) <= gap_ms => {
                s.end_ms = l.ts_ms;
                s.listens.push(l.clone());
            }
            _ => sessions.push(Session {
                user: l.user.clone(),
                start_ms: l.ts_ms,
                end_ms: l.ts_ms,
                listens: vec![l.clone()],
            }),
        }
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TrackId, UserId};
    use proptest::prelude::*;

    fn l(id: &str, user: &str, ts: i64) -> Listen {
        Listen {
            event_id: id.into(),
            user: UserId::new(user).unwrap(),
            track: TrackId::new("t").unwrap(),
            ts_ms: ts,
            play_fraction: 1.0,
            skipped: false,
        }
    }

    #[test]
    fn splits_on_gaps_longer_than_the_limit_only() {
        let gap = Duration::from_millis(100);
        let s = sessionise(&[l("a", "u", 0), l("b", "u", 100), l("c", "u", 201)], gap);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].start_ms, s[0].end_ms, s[0].listens.len()),
            (0, 100, 2)
        );
        assert_eq!(s[1].listens[0].event_id, "c");
        assert!(sessionise(&[], gap).is_empty());
    }

    #[test]
    fn never_mixes_listeners() {
        let s = sessionise(
            &[l("a", "u1", 0), l("b", "u2", 1), l("c", "u1", 2)],
            Duration::from_secs(60),
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].listens.len(), 2);
        assert_eq!(s[1].user.as_str(), "u2");
    }

    fn listens() -> impl Strategy<Value = Vec<Listen>> {
        // Few distinct timestamps and users so ties and interleavings are common.
        proptest::collection::vec((0i64..50, 0usize..3), 0..60).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (t, u))| l(&format!("e{i}"), ["u0", "u1", "u2"][u], t * 7))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn order_independent_and_a_partition(mut v in listens(), gap in 0u64..30, seed in any::<u64>()) {
            let gap = Duration::from_millis(gap);
            let a = sessionise(&v, gap);
            // Deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..v.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                v.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let b = sessionise(&v, gap);
            prop_assert_eq!(&a, &b);
            // Every listen in exactly one session.
            let mut ids: Vec<&str> = a.iter().flat_map(|s| s.listens.iter().map(|l| l.event_id.as_str())).collect();
            prop_assert_eq!(ids.len(), v.len());
            ids.sort_unstable(); ids.dedup();
            prop_assert_eq!(ids.len(), v.len());
            for s in &a {
                prop_assert!(s.listens.iter().all(|l| l.user == s.user));
                for w in s.listens.windows(2) {
                    let d = w[1].ts_ms - w[0].ts_ms;
                    prop_assert!(d >= 0 && d <= gap.as_millis() as i64);
                }
                prop_assert_eq!(s.start_ms, s.listens[0].ts_ms);
                prop_assert_eq!(s.end_ms, s.listens.last().unwrap().ts_ms);
            }
            // Consecutive sessions of one listener are separated by more than the gap.
            for w in a.windows(2) {
                if w[0].user == w[1].user {
                    prop_assert!(w[1].start_ms - w[0].end_ms > gap.as_millis() as i64);
                }
            }
        }
    }
}
