//! The conventions every service shares about what lives in the index: collection names and
//! shapes, how a track or user id becomes a point id, and how metadata rides in payloads.

use cadenza_index::{CollectionSpec, Distance, FieldKind, Payload, PointId};
use cadenza_proto::v1::{TagScore, TrackMetadata};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Tracks: vector = the pooled embedding, payload = metadata + tags.
pub const TRACKS: &str = "tracks";
/// Users: vector = the mean-of-history profile, payload = the user state document.
pub const USERS: &str = "users";

/// Payload fields filters use; indexed so filtered searches stay fast.
pub fn tracks_spec(dim: usize) -> CollectionSpec {
    CollectionSpec::new(TRACKS, dim, Distance::Cosine)
        .index("ensemble", FieldKind::Keyword)
        .index("lead_instrument", FieldKind::Keyword)
        .index("era", FieldKind::Keyword)
        .index("composer", FieldKind::Keyword)
        .index("tempo_bpm", FieldKind::Float)
}

pub fn users_spec(dim: usize) -> CollectionSpec {
    CollectionSpec::new(USERS, dim, Distance::Cosine)
}

/// Point id of a track or user id: the first 8 bytes of its SHA-256. The string id is kept in
/// the payload; 64 bits make a collision negligible for any archive (and ids are checked on read).
pub fn point_id(id: &str) -> PointId {
    let d = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Payload of a track point.
pub fn track_payload(
    track_id: &str,
    meta: &TrackMetadata,
    tags: &[TagScore],
    model: &str,
    duration_s: f64,
) -> Payload {
    let v = json!({
        "track_id": track_id,
        "title": meta.title,
        "composer": meta.composer,
        "era": meta.era,
        "ensemble": meta.ensemble,
        "lead_instrument": meta.lead_instrument,
        "tempo_bpm": meta.tempo_bpm,
        "key": meta.key,
        "work_id": meta.work_id,
        "external_id": meta.external_id,
        "filename": meta.filename,
        "extra": meta.extra,
        "tags": tags.iter().map(|t| json!({"tag": t.tag, "score": t.score})).collect::<Vec<_>>(),
        "model": model,
        "duration_s": duration_s,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object"),
    }
}

fn s(p: &Payload, k: &str) -> String {
    p.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Metadata back out of a track payload.
pub fn track_metadata(p: &Payload) -> TrackMetadata {
    TrackMetadata {
        external_id: s(p, "external_id"),
        title: s(p, "title"),
        composer: s(p, "composer"),
        era: s(p, "era"),
        ensemble: s(p, "ensemble"),
        lead_instrument: s(p, "lead_instrument"),
        tempo_bpm: p.get("tempo_bpm").and_then(Value::as_f64).unwrap_or(0.0) as f32,
        key: s(p, "key"),
        work_id: s(p, "work_id"),
        filename: s(p, "filename"),
        extra: p
            .get("extra")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Tags of a track payload, best first.
pub fn track_tags(p: &Payload) -> Vec<TagScore> {
    p.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some(TagScore {
                        tag: t.get("tag")?.as_str()?.to_owned(),
                        score: t.get("score")?.as_f64()? as f32,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn payload_track_id(p: &Payload) -> Option<&str> {
    p.get("track_id").and_then(Value::as_str)
}

/// The `tracks` point an embedded-track event describes (the same function serves the writer
/// and every materialiser, so all indexes hold identical points).
pub fn track_point(e: &cadenza_proto::v1::TrackEmbedded) -> cadenza_index::Point {
    let meta = e.metadata.clone().unwrap_or_default();
    cadenza_index::Point::new(point_id(&e.track_id), e.vector.clone()).with_payload(track_payload(
        &e.track_id,
        &meta,
        &e.top_tags,
        &e.model,
        e.duration_s,
    ))
}

/// The `users` point a user-state event describes: `state_json` is `{"vector", "payload"}`.
pub fn user_point(e: &cadenza_proto::v1::UserStateUpdated) -> Option<cadenza_index::Point> {
    let doc: Value = serde_json::from_slice(&e.state_json).ok()?;
    let vector: Vec<f32> = serde_json::from_value(doc.get("vector")?.clone()).ok()?;
    let payload = doc.get("payload")?.as_object()?.clone();
    Some(cadenza_index::Point::new(point_id(&e.user_id), vector).with_payload(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_payload() {
        let meta = TrackMetadata {
            title: "Partita".into(),
            composer: "Bach".into(),
            tempo_bpm: 96.0,
            extra: [("soloist".to_owned(), "Yuri".to_owned())].into(),
            ..Default::default()
        };
        let tags = vec![TagScore {
            tag: "violin".into(),
            score: 0.9,
        }];
        let p = track_payload("t1", &meta, &tags, "MTT_musicnn", 30.0);
        assert_eq!(track_metadata(&p), meta);
        assert_eq!(track_tags(&p), tags);
        assert_eq!(payload_track_id(&p), Some("t1"));
        assert_ne!(point_id("t1"), point_id("t2"));
        assert_eq!(point_id("t1"), point_id("t1"));
    }
}
