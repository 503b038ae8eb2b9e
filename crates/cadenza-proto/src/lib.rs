//! cadenza's wire contract: the gRPC services (`Ingest`, `Recommender`, `Catalog`) and the
//! protobuf payloads of every Kafka topic, generated from `proto/cadenza/v1` by `build.rs`.
//!
//! We generate in `build.rs` (with protoc from `protoc-bin-vendored`, so no system protoc)
//! rather than committing generated code: the Rust types cannot drift from the `.proto`
//! files, at the cost of a protoc run per clean build. The descriptor set for server
//! reflection comes out of the same run; `grpc.health.v1` and reflection are re-exported so
//! every service takes them from one place (one tonic in the tree).

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
/// The standard `grpc.health.v1` service (readiness for probes and `grpc_health_probe`).
pub use tonic_health as health;
/// gRPC server reflection (`grpcurl list`), fed with [`FILE_DESCRIPTOR_SET`].
pub use tonic_reflection as reflection;

/// Kafka topic names (the same names are used by the in-process bus). Payloads are the
/// messages of `events.proto`; keys are track ids for track topics, user ids for the others.
pub mod topics {
    /// [`crate::v1::TrackIngested`], keyed by track id.
    pub const TRACK_INGESTED: &str = "cadenza.track.ingested";
    /// [`crate::v1::TrackEmbedded`], keyed by track id.
    pub const TRACK_EMBEDDED: &str = "cadenza.track.embedded";
    /// [`crate::v1::ListenRecorded`], keyed by user id (one user's events stay in order).
    pub const LISTEN: &str = "cadenza.listen";
    /// [`crate::v1::UserStateUpdated`], keyed by user id.
    pub const USER_STATE: &str = "cadenza.user-state";
    /// Events a stage gave up on: the original key and payload with `x-dlq-*` headers
    /// ([`crate::v1::DeadLetter`] is the self-contained envelope of the same facts).
    pub const DEAD_LETTER: &str = "cadenza.dead-letter";
    /// Every topic, for creating them up front.
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
            session_hint: String::new(),
        };
        let bytes = e.encode_to_vec();
        assert_eq!(v1::ListenRecorded::decode(bytes.as_slice()).unwrap(), e);
        assert!(v1::ListenRecorded::decode(&[0xff, 0xff, 0xff][..]).is_err());
        assert!(!FILE_DESCRIPTOR_SET.is_empty());
    }

    #[test]
    fn dead_letter_keeps_undecodable_payload_bytes() {
        let d = v1::DeadLetter {
            stage: "session-aggregation".into(),
            reason: "payload does not decode".into(),
            source_topic: topics::LISTEN.into(),
            source_partition: 3,
            source_offset: 42,
            original_key: b"u1".to_vec(),
            original_payload: vec![0xff, 0x00, 0xfe],
            failed_at_ms: 1,
        };
        let back = v1::DeadLetter::decode(d.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn descriptor_set_names_every_service_file() {
        let has = |needle: &[u8]| {
            FILE_DESCRIPTOR_SET
                .windows(needle.len())
                .any(|w| w == needle)
        };
        for f in ["ingest", "recommend", "catalog", "events", "common"] {
            assert!(
                has(format!("cadenza/v1/{f}.proto").as_bytes()),
                "{f}.proto missing"
            );
        }
        for s in ["Ingest", "Recommender", "Catalog"] {
            assert!(has(s.as_bytes()), "service {s} missing");
        }
    }

    #[test]
    fn topic_names_are_distinct_and_namespaced() {
        let mut all = topics::ALL.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), topics::ALL.len());
        assert!(all.iter().all(|t| t.starts_with("cadenza.")));
    }
}
