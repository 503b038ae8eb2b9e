//! Dead letters: events a stage cannot process are parked on one topic, with the reason in
//! headers, instead of blocking the partition or being dropped silently.

use crate::{Delivery, EventBus, Message, Result};

/// The topic dead letters go to. Services include it in their `ensure_topics` call.
pub const DEAD_LETTER_TOPIC: &str = "cadenza.dead-letter";
/// Header: why the event could not be processed (human-readable).
pub const HEADER_REASON: &str = "x-dlq-reason";
/// Header: which stage gave up (e.g. `session-aggregation`).
pub const HEADER_STAGE: &str = "x-dlq-stage";
/// Header: topic of the original event.
pub const HEADER_SOURCE_TOPIC: &str = "x-dlq-source-topic";
/// Header: partition of the original event (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "x-dlq-source-partition";
/// Header: offset of the original event (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "x-dlq-source-offset";

/// Publish `original`'s key, payload and headers to [`DEAD_LETTER_TOPIC`], adding the
/// `x-dlq-*` headers that say what failed where. The caller then commits `original` so the
/// partition moves on.
pub async fn dead_letter(
    bus: &dyn EventBus,
    original: &Message,
    reason: &str,
    stage: &str,
) -> Result<Delivery> {
    let mut headers = original.headers.clone();
    headers.extend([
        (HEADER_REASON.to_string(), reason.as_bytes().to_vec()),
        (HEADER_STAGE.to_string(), stage.as_bytes().to_vec()),
        (
            HEADER_SOURCE_TOPIC.to_string(),
            original.topic.as_bytes().to_vec(),
        ),
        (
            HEADER_SOURCE_PARTITION.to_string(),
            original.partition.to_string().into_bytes(),
        ),
        (
            HEADER_SOURCE_OFFSET.to_string(),
            original.offset.to_string().into_bytes(),
        ),
    ]);
    tracing::warn!(
        topic = %original.topic,
        partition = original.partition,
        offset = original.offset,
        stage,
        reason,
        "event dead-lettered"
    );
    bus.publish(
        DEAD_LETTER_TOPIC,
        original.key.as_deref().unwrap_or_default(),
        original.payload.clone(),
        headers,
    )
    .await
}
