//! Feature extraction: consumes `cadenza.track.ingested`, decodes and embeds each track with
//! the frozen audio model, writes the track's point to the index (when it has one to write
//! to) and publishes `cadenza.track.embedded` carrying the vector — from that moment the
//! track is recommendable: the cold-start answer collaborative filtering lacks.
//!
//! Audio that cannot be decoded is a bad event, not a failure: it goes to the dead-letter
//! topic with the decoder's reason and the next track is processed.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cadenza_audio::Isolation;
use cadenza_bus::{EventBus, Message};
use cadenza_index::VectorIndex;
use cadenza_model::{Embedder, ModelError};
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{TagScore, TrackEmbedded, TrackIngested};
use cadenza_svc::catalog::{TRACKS, track_point};
use cadenza_svc::consumer::{self, Outcome};
use cadenza_svc::{BlobStore, Shutdown, metrics, propagation};

pub const GROUP: &str = "cadenza-feature-extraction";

/// The extraction's dependencies.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub bus: Arc<dyn EventBus>,
    /// Where track points are written; `None` when another process materialises them from
    /// `cadenza.track.embedded` (a distributed deployment without a shared Qdrant).
    pub index: Option<Arc<dyn VectorIndex>>,
    pub embedder: Arc<Embedder>,
    /// This process's view of the blob store: audio is looked up by content hash here, so a
    /// volume mounted at another path than ingest's works; `None`: the event's `blob_path`.
    pub blobs: Option<BlobStore>,
    /// Decode in an isolated worker process under limits (`None`: in this process). Ingest
    /// has decoded every upload in one already, but a file that got past it must still not
    /// take this process down.
    pub isolation: Option<Isolation>,
}

impl Extractor {
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let me = Arc::new(self);
        consumer::run(
            me.bus.as_ref(),
            GROUP,
            &[topics::TRACK_INGESTED],
            "feature-extraction",
            shutdown,
            |msg| {
                let me = me.clone();
                async move { me.handle(&msg).await }
            },
        )
        .await
    }

    async fn handle(&self, msg: &Message) -> Outcome {
        let span = tracing::info_span!("embed_track", offset = msg.offset);
        propagation::set_parent(&span, &msg.headers);
        let _e = span.enter();
        let ingested = match TrackIngested::decode(msg.payload.as_slice()) {
            Ok(t) => t,
            Err(e) => {
                return Outcome::Rejected {
                    kind: "malformed",
                    reason: format!("not a TrackIngested protobuf: {e}"),
                };
            }
        };
        let embedder = self.embedder.clone();
        let path = self
            .blobs
            .as_ref()
            .and_then(|b| b.find(&ingested.sha256))
            .unwrap_or_else(|| std::path::PathBuf::from(&ingested.blob_path));
        let t0 = std::time::Instant::now();
        let isolation = self.isolation.clone();
        let result = tokio::task::spawn_blocking(move || match &isolation {
            Some(iso) => embedder.embed_file_isolated(&path, iso),
            None => embedder.embed_file(&path),
        })
        .await;
        let embedding = match result {
            Ok(Ok(e)) => e,
            Ok(Err(ModelError::Audio(a))) => {
                metrics::counter(
                    "errors_total",
                    "errors by stage and kind",
                    &["stage", "kind"],
                )
                .with_label_values(&["feature-extraction", a.kind()])
                .inc();
                return Outcome::Rejected {
                    kind: a.kind(),
                    reason: format!("track {}: {a}", ingested.track_id),
                };
            }
            Ok(Err(e)) => return Outcome::Retry(e.into()),
            Err(join) => return Outcome::Retry(anyhow::anyhow!("embedding task failed: {join}")),
        };
        metrics::histogram(
            "embed_duration_seconds",
            "time to decode and embed one track",
            &[],
        )
        .with_label_values(&[] as &[&str])
        .observe(t0.elapsed().as_secs_f64());
        let event = TrackEmbedded {
            track_id: ingested.track_id.clone(),
            model: embedding.model.clone(),
            vector: embedding.vector().to_vec(),
            top_tags: embedding
                .top_tags
                .iter()
                .map(|(tag, score)| TagScore {
                    tag: tag.clone(),
                    score: *score,
                })
                .collect(),
            metadata: ingested.metadata.clone(),
            duration_s: embedding.duration_s,
            n_patches: embedding.patches.n_patches as u32,
            dims: embedding.vector().len() as u32,
            embedded_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        if let Some(index) = &self.index
            && let Err(e) = index.upsert(TRACKS, vec![track_point(&event)]).await
        {
            return Outcome::Retry(e.into());
        }
        match self
            .bus
            .publish(
                topics::TRACK_EMBEDDED,
                event.track_id.as_bytes(),
                event.encode_to_vec(),
                propagation::inject_current(),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(track_id = %event.track_id, duration_s = event.duration_s, "track embedded");
                Outcome::Done
            }
            Err(e) => Outcome::Retry(e.into()),
        }
    }
}
