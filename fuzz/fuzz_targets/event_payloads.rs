//! Event payloads on arbitrary bytes: every topic's protobuf, then what its consumer does with
//! a decoded event — a listen becomes a domain `Listen` (ids, fraction, timestamp checked), a
//! user-state announcement's document becomes a `UserState` (as the materialisers and
//! `state_of` read it, string or object form), an embedded track's vector is checked.
//! Failing is a panic, a memory error, a timeout or running out of memory.
#![no_main]

use cadenza_core::{Listen, UserState};
use cadenza_proto::Message as _;
use cadenza_proto::v1::{ListenRecorded, TrackEmbedded, TrackIngested, UserStateUpdated};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = ListenRecorded::decode(data)
        && let Ok(listen) = Listen::new(
            &l.event_id,
            &l.user_id,
            &l.track_id,
            l.timestamp_ms,
            l.play_fraction,
            l.skipped,
            1_800_000_000_000,
        )
    {
        assert!(listen.play_fraction.is_finite() && (0.0..=1.0).contains(&listen.play_fraction));
    }
    if let Ok(e) = TrackEmbedded::decode(data) {
        let _ = e.vector.iter().all(|x| x.is_finite());
    }
    if let Ok(u) = UserStateUpdated::decode(data)
        && let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&u.state_json)
    {
        // As `cadenza_session_aggregation::state_of` reads it from the materialised point.
        if let Some(state) = doc.pointer("/payload/state") {
            let _ = UserState::from_stored(state);
        }
    }
    let _ = TrackIngested::decode(data);
});
