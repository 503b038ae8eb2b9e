//! cadenza's wire contract: the gRPC services (`Ingest`, `Recommender`, `Catalog`) and the
//! protobuf payloads of every Kafka topic, generated from `proto/cadenza/v1` by `build.rs`
//! (code is generated at build time, not committed, so it cannot drift from the protos).

#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("cadenza.v1");
}

/// Encoded descriptor set of `cadenza.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("cadenza_descriptor");

pub use prost::Message;
pub use tonic_health as health;
pub use tonic_reflection as reflection;

/// Kafka topic names (the same names are used by the in-process bus).
pub mod topics {
    pub const TRACK_INGESTED: &str = "cadenza.track.ingested";
    pub const TRACK_EMBEDDED: &str = "cadenza.track.embedded";
    pub const LISTEN: &str = "cadenza.listen";
    pub const USER_STATE: &str = "cadenza.user-state";
    pub const DEAD_LETTER: &str = "cadenza.dead-letter";
    pub const ALL: [&str; 5] = [
        TRACK_INGESTED,
        TRACK_EMBEDDED,
        LISTEN,
        USER_STATE,
        DEAD_LETTER,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_reject_garbage() {
        let e = v1::ListenRecorded {
            event_id: "e1".into(),
            user_id: "u".into(),
            track_id: "t".into(),
            timestamp_ms: 5,
            play_fraction: 0.5,
            skipped: false,
        };
        let bytes = e.encode_to_vec();
        assert_eq!(v1::ListenRecorded::decode(bytes.as_slice()).unwrap(), e);
        assert!(v1::ListenRecorded::decode(&[0xff, 0xff, 0xff][..]).is_err());
        assert!(!FILE_DESCRIPTOR_SET.is_empty());
    }
}
