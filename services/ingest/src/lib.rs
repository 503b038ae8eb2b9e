//! Ingest: the front door. Audio arrives streamed (`UploadTrack`) or by path (`IngestPath`),
//! is decoded once to prove it is audio the model can use, stored content-addressed, and
//! announced on `cadenza.track.ingested` keyed by track id. Listens arrive singly or in
//! batches, are validated (ids, play fraction, clock skew, the track exists) and published on
//! `cadenza.listen` keyed by user id, so each listener's events stay in order.
//!
//! A bad request is refused with a sentence saying what is wrong, counted in
//! `cadenza_errors_total{stage="ingest",kind}`; a refused listen is also parked on the
//! dead-letter topic (it is an event, and someone may want to replay it once the track
//! exists). Nothing else is touched: one bad item in a batch does not fail the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cadenza_audio::{Isolation, Limits};
use cadenza_bus::{EventBus, Message};
use cadenza_core::{Listen, TrackId};
use cadenza_index::VectorIndex;
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::ingest_server::{Ingest, IngestServer};
use cadenza_proto::v1::{
    IngestPathRequest, IngestReply, ListenAck, ListenBatch, ListenBatchAck, ListenRecorded,
    ListenRequest, TrackIngested, TrackMetadata, UploadChunk, listen_batch_ack, upload_chunk,
};
use cadenza_svc::catalog::{TRACKS, point_id};
use cadenza_svc::{BlobStore, grpc, metrics, propagation};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

/// Limits and places of the ingest service.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Longest audio accepted, in seconds.
    pub max_duration_s: f64,
    /// Directories `IngestPath` may read from; empty: ingest by path is refused.
    pub allowed_roots: Vec<PathBuf>,
    /// Most listens in one `RecordListens` call.
    pub max_batch: usize,
    /// Decode uploads in a resource-limited worker process (`cadenza-decode`); `None`: in
    /// this process (unit tests, or a deployment that chose to).
    pub isolation: Option<Isolation>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_upload_bytes: 256 * 1024 * 1024,
            max_duration_s: 3_600.0,
            allowed_roots: Vec::new(),
            max_batch: 1_000,
            isolation: None,
        }
    }
}

/// The ingest service: a bus to publish on, a blob store, and the index it checks listens'
/// track ids against.
#[derive(Debug, Clone)]
pub struct IngestService {
    bus: Arc<dyn EventBus>,
    blobs: BlobStore,
    index: Arc<dyn VectorIndex>,
    options: Arc<IngestOptions>,
}

const STAGE: &str = "ingest";

fn count_error(kind: &str) {
    metrics::counter(
        "errors_total",
        "errors by stage and kind",
        &["stage", "kind"],
    )
    .with_label_values(&[STAGE, kind])
    .inc();
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Decode an upload in the isolated worker: the bytes go to a temporary file (named with the
/// upload's extension, the format hint) that is removed afterwards. The outer error is ours
/// (the temporary file could not be written), the inner one the file's.
fn probe_isolated(
    iso: &Isolation,
    bytes: &[u8],
    ext: Option<&str>,
    limits: &Limits,
) -> Result<Result<(), cadenza_audio::AudioError>, Status> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let ext = ext
        .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let path = std::env::temp_dir().join(format!(
        "cadenza-probe-{}-{}{ext}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).map_err(|e| {
        Status::unavailable(format!(
            "cannot stage the upload for decoding in {}: {e}",
            path.display()
        ))
    })?;
    let probed = iso.probe_file(&path, limits).map(|_| ());
    let _ = std::fs::remove_file(&path);
    Ok(probed)
}

/// The track id of an upload: the archive's own id (`metadata.external_id`) when given, else
/// derived from the content, so the same recording uploaded twice is the same track.
pub fn track_id_for(meta: &TrackMetadata, sha256: &str) -> Result<TrackId, Status> {
    if meta.external_id.is_empty() {
        let short = sha256.get(..16).unwrap_or(sha256);
        return TrackId::new(format!("trk-{short}")).map_err(|e| Status::internal(e.to_string()));
    }
    TrackId::new(meta.external_id.clone())
        .map_err(|e| Status::invalid_argument(format!("metadata.external_id: {e}")))
}

impl IngestService {
    pub fn new(
        bus: Arc<dyn EventBus>,
        blobs: BlobStore,
        index: Arc<dyn VectorIndex>,
        options: IngestOptions,
    ) -> Self {
        IngestService {
            bus,
            blobs,
            index,
            options: Arc::new(options),
        }
    }

    /// The gRPC service, with auth and the message-size limit of `server`.
    pub fn routes(self, server: &grpc::ServerArgs) -> tonic::service::Routes {
        self.add_to(tonic::service::Routes::default(), server)
    }

    /// `routes` plus this service (one server for several services, as in `cadenza up`).
    pub fn add_to(
        self,
        routes: tonic::service::Routes,
        server: &grpc::ServerArgs,
    ) -> tonic::service::Routes {
        let auth = server.auth();
        let svc = IngestServer::new(self).max_decoding_message_size(server.max_message_bytes);
        routes.add_service(tonic::service::interceptor::InterceptedService::new(
            svc,
            move |r| auth.check(r),
        ))
    }

    fn too_large(&self, size: u64) -> Status {
        count_error("too_large");
        Status::resource_exhausted(format!(
            "upload is at least {size} bytes; the limit is {} bytes (CADENZA_MAX_UPLOAD_BYTES)",
            self.options.max_upload_bytes
        ))
    }

    /// Decode to validate, store, publish. Shared by both ways in.
    pub async fn ingest_bytes(
        &self,
        bytes: Vec<u8>,
        mut meta: TrackMetadata,
    ) -> Result<IngestReply, Status> {
        if bytes.len() as u64 > self.options.max_upload_bytes {
            return Err(self.too_large(bytes.len() as u64));
        }
        let sha256 = BlobStore::id_of(&bytes);
        let track_id = track_id_for(&meta, &sha256)?;
        let ext = Path::new(&meta.filename)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_owned);
        let limits = Limits {
            max_bytes: self.options.max_upload_bytes,
            max_duration_s: self.options.max_duration_s,
            ..Limits::default()
        };
        // Decoding is the proof the bytes are usable audio; a refusal here costs the client
        // a round trip, not a dead letter in feature extraction later.
        let probe = bytes.clone();
        let hint = ext.clone();
        let isolation = self.options.isolation.clone();
        let decoded = tokio::task::spawn_blocking(move || match isolation {
            Some(iso) => probe_isolated(&iso, &probe, hint.as_deref(), &limits),
            None => Ok(cadenza_audio::decode_bytes(probe, hint.as_deref(), &limits).map(|_| ())),
        })
        .await
        .map_err(|e| Status::internal(format!("decoder task failed: {e}")))??;
        if let Err(e) = decoded {
            count_error(e.kind());
            return Err(Status::invalid_argument(format!(
                "{}: not usable audio: {e}",
                if meta.filename.is_empty() {
                    "upload"
                } else {
                    &meta.filename
                }
            )));
        }
        let size = bytes.len() as u64;
        let blobs = self.blobs.clone();
        let ext_s = ext.unwrap_or_default();
        let (_, path, new) = tokio::task::spawn_blocking(move || blobs.put(&bytes, &ext_s))
            .await
            .map_err(|e| Status::internal(format!("blob task failed: {e}")))?
            .map_err(|e| Status::unavailable(format!("cannot store the audio: {e}")))?;
        if meta.external_id.is_empty() {
            meta.external_id = track_id.to_string();
        }
        let event = TrackIngested {
            track_id: track_id.to_string(),
            blob_path: path.display().to_string(),
            metadata: Some(meta),
            size_bytes: size,
            ingested_at_ms: now_ms(),
            sha256,
        };
        // Published even when the blob existed: a retry after a failed publish must still
        // reach feature extraction, which is idempotent (an upsert by track id).
        self.bus
            .publish(
                topics::TRACK_INGESTED,
                track_id.as_str().as_bytes(),
                event.encode_to_vec(),
                propagation::inject_current(),
            )
            .await
            .map_err(|e| Status::unavailable(format!("cannot publish the track: {e}")))?;
        tracing::info!(track_id = %track_id, bytes = size, new, "track ingested");
        Ok(IngestReply {
            track_id: track_id.to_string(),
            duplicate: !new,
            bytes_stored: if new { size } else { 0 },
        })
    }

    /// A path `IngestPath` may read: inside an allowed root once resolved (no `..` escapes,
    /// no symlinks out).
    fn allowed_path(&self, raw: &str) -> Result<PathBuf, Status> {
        let raw = raw.strip_prefix("file://").unwrap_or(raw);
        if raw.contains("://") {
            return Err(Status::invalid_argument(format!(
                "{raw}: only local paths and file:// URIs can be ingested by path; upload other sources with UploadTrack"
            )));
        }
        if self.options.allowed_roots.is_empty() {
            return Err(Status::permission_denied(
                "ingest by path is disabled on this server (start it with --allow-path DIR); use UploadTrack",
            ));
        }
        let path =
            std::fs::canonicalize(raw).map_err(|e| Status::not_found(format!("{raw}: {e}")))?;
        let inside = self
            .options
            .allowed_roots
            .iter()
            .any(|root| std::fs::canonicalize(root).is_ok_and(|root| path.starts_with(root)));
        if !inside {
            count_error("path_not_allowed");
            return Err(Status::permission_denied(format!(
                "{raw} is outside the directories this server may read (--allow-path)"
            )));
        }
        Ok(path)
    }

    /// Validate one listen and publish it; `Err` is the reason it was refused.
    async fn record(&self, req: ListenRequest) -> Result<String, Status> {
        let event_id = if req.event_id.is_empty() {
            new_event_id(&req)
        } else {
            req.event_id.clone()
        };
        let listen = Listen::new(
            &event_id,
            &req.user_id,
            &req.track_id,
            req.timestamp_ms,
            req.play_fraction,
            req.skipped,
            now_ms(),
        );
        let listen = match listen {
            Ok(l) => l,
            Err(e) => {
                return Err(self
                    .refuse(
                        &req,
                        &event_id,
                        "invalid",
                        Status::invalid_argument(e.to_string()),
                    )
                    .await);
            }
        };
        let known = self
            .index
            .get(TRACKS, &[point_id(listen.track.as_str())], false)
            .await
            .map_err(|e| Status::unavailable(format!("cannot check the track id: {e}")))?;
        if known.is_empty() {
            let status = Status::not_found(format!(
                "unknown track id `{}`: ingest the track before recording listens of it",
                listen.track
            ));
            return Err(self.refuse(&req, &event_id, "unknown_track", status).await);
        }
        let event = ListenRecorded {
            event_id: event_id.clone(),
            user_id: req.user_id,
            track_id: req.track_id,
            timestamp_ms: req.timestamp_ms,
            play_fraction: req.play_fraction,
            skipped: req.skipped,
            session_hint: req.session_hint,
        };
        self.bus
            .publish(
                topics::LISTEN,
                listen.user.as_str().as_bytes(),
                event.encode_to_vec(),
                propagation::inject_current(),
            )
            .await
            .map_err(|e| Status::unavailable(format!("cannot publish the listen: {e}")))?;
        Ok(event_id)
    }

    /// Count a refused listen and park it on the dead-letter topic; returns `status`.
    async fn refuse(
        &self,
        req: &ListenRequest,
        event_id: &str,
        kind: &str,
        status: Status,
    ) -> Status {
        count_error(kind);
        metrics::counter(
            "dead_letters_total",
            "events sent to the dead-letter topic",
            &["stage", "reason"],
        )
        .with_label_values(&[STAGE, kind])
        .inc();
        let event = ListenRecorded {
            event_id: event_id.to_owned(),
            user_id: req.user_id.clone(),
            track_id: req.track_id.clone(),
            timestamp_ms: req.timestamp_ms,
            play_fraction: req.play_fraction,
            skipped: req.skipped,
            session_hint: req.session_hint.clone(),
        };
        // Never published, so no partition or offset: -1 says so.
        let original = Message {
            topic: topics::LISTEN.to_owned(),
            partition: -1,
            offset: -1,
            key: Some(req.user_id.as_bytes().to_vec()),
            payload: event.encode_to_vec(),
            headers: propagation::inject_current(),
            timestamp_ms: now_ms(),
        };
        if let Err(e) =
            cadenza_bus::dead_letter(self.bus.as_ref(), &original, status.message(), STAGE).await
        {
            tracing::warn!("could not dead-letter a refused listen: {e}");
        }
        status
    }
}

/// An id for a listen that came without one (a client that never retries).
fn new_event_id(req: &ListenRequest) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(req.user_id.as_bytes());
    h.update(req.track_id.as_bytes());
    h.update(req.timestamp_ms.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_le_bytes(),
    );
    format!("ev-{}", &hex::encode(h.finalize())[..24])
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn upload_track(
        &self,
        request: Request<Streaming<UploadChunk>>,
    ) -> Result<Response<IngestReply>, Status> {
        grpc::observe(grpc::call("UploadTrack", request.metadata()), async {
            let mut stream = request.into_inner();
            let mut meta: Option<TrackMetadata> = None;
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.message().await? {
                match chunk.chunk {
                    Some(upload_chunk::Chunk::Metadata(m)) => {
                        if meta.is_some() || !bytes.is_empty() {
                            count_error("bad_stream");
                            return Err(Status::invalid_argument(
                                "metadata must be the first message of an upload, and only once",
                            ));
                        }
                        meta = Some(m);
                    }
                    Some(upload_chunk::Chunk::Data(d)) => {
                        if (bytes.len() + d.len()) as u64 > self.options.max_upload_bytes {
                            return Err(self.too_large((bytes.len() + d.len()) as u64));
                        }
                        bytes.extend_from_slice(&d);
                    }
                    None => {}
                }
            }
            if bytes.is_empty() {
                count_error("empty");
                return Err(Status::invalid_argument(
                    "the upload carried no audio bytes",
                ));
            }
            self.ingest_bytes(bytes, meta.unwrap_or_default())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn ingest_path(
        &self,
        request: Request<IngestPathRequest>,
    ) -> Result<Response<IngestReply>, Status> {
        grpc::observe(grpc::call("IngestPath", request.metadata()), async {
            let req = request.into_inner();
            let path = self.allowed_path(&req.path)?;
            let size = std::fs::metadata(&path)
                .map_err(|e| Status::not_found(format!("{}: {e}", req.path)))?
                .len();
            if size > self.options.max_upload_bytes {
                return Err(self.too_large(size));
            }
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| Status::not_found(format!("{}: {e}", req.path)))?;
            let mut meta = req.metadata.unwrap_or_default();
            if meta.filename.is_empty() {
                meta.filename = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
            }
            self.ingest_bytes(bytes, meta).await.map(Response::new)
        })
        .await
    }

    async fn record_listen(
        &self,
        request: Request<ListenRequest>,
    ) -> Result<Response<ListenAck>, Status> {
        grpc::observe(grpc::call("RecordListen", request.metadata()), async {
            let event_id = self.record(request.into_inner()).await?;
            Ok(Response::new(ListenAck { event_id }))
        })
        .await
    }

    async fn record_listens(
        &self,
        request: Request<ListenBatch>,
    ) -> Result<Response<ListenBatchAck>, Status> {
        grpc::observe(grpc::call("RecordListens", request.metadata()), async {
            let batch = request.into_inner();
            if batch.listens.len() > self.options.max_batch {
                count_error("batch_too_large");
                return Err(Status::invalid_argument(format!(
                    "{} listens in one batch; at most {} are accepted per call",
                    batch.listens.len(),
                    self.options.max_batch
                )));
            }
            let mut ack = ListenBatchAck::default();
            for l in batch.listens {
                match self.record(l).await {
                    Ok(event_id) => {
                        ack.accepted += 1;
                        ack.items.push(listen_batch_ack::Item {
                            accepted: true,
                            event_id,
                            reason: String::new(),
                        });
                    }
                    // The bus or index is away: nothing after this can succeed either, and
                    // the client must retry (event ids make the retry idempotent).
                    Err(s) if s.code() == tonic::Code::Unavailable => return Err(s),
                    Err(s) => {
                        ack.rejected += 1;
                        ack.items.push(listen_batch_ack::Item {
                            accepted: false,
                            event_id: String::new(),
                            reason: s.message().to_owned(),
                        });
                    }
                }
            }
            Ok(Response::new(ack))
        })
        .await
    }
}

#[cfg(test)]
mod tests;

// The decoder settings live in cadenza-svc: feature extraction uses them too.
pub use cadenza_svc::decoder::{DecoderArgs, DecoderMode};
