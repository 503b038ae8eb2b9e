//! The ingest API over real loopback gRPC, the on-disk bus and the in-memory reference index.

use std::time::Duration;

use cadenza_bus::{DEAD_LETTER_TOPIC, HEADER_REASON, LogBus, StartFrom, SubscribeOpts};
use cadenza_index::{MemoryIndex, Point};
use cadenza_proto::v1::ingest_client::IngestClient;
use cadenza_svc::Shutdown;
use cadenza_svc::catalog::tracks_spec;
use cadenza_svc::grpc::ServerArgs;
use tonic::Code;
use tonic::transport::Channel;

use super::*;

const WAV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/parity/clip16k_mono.wav"
);

struct Fixture {
    addr: std::net::SocketAddr,
    client: IngestClient<Channel>,
    bus: Arc<dyn EventBus>,
    blob_dir: tempfile::TempDir,
    roots: tempfile::TempDir,
    _bus_dir: tempfile::TempDir,
    shutdown: Shutdown,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn fixture(options: IngestOptions, token: Option<&str>) -> Fixture {
    let bus_dir = tempfile::tempdir().unwrap();
    let blob_dir = tempfile::tempdir().unwrap();
    let roots = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(bus_dir.path()).await.unwrap());
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
        .await
        .unwrap();
    let index: Arc<dyn VectorIndex> = Arc::new(MemoryIndex::new());
    index.ensure_collection(&tracks_spec(2)).await.unwrap();
    index
        .upsert(TRACKS, vec![Point::new(point_id("known"), vec![1.0, 0.0])])
        .await
        .unwrap();
    let options = IngestOptions {
        allowed_roots: if options.allowed_roots.is_empty() {
            vec![]
        } else {
            vec![roots.path().to_owned()]
        },
        ..options
    };
    let service = IngestService::new(
        bus.clone(),
        BlobStore::open(blob_dir.path()).unwrap(),
        index,
        options,
    );
    let mut server = ServerArgs::on("127.0.0.1:0".parse().unwrap());
    server.auth_token = token.map(str::to_owned);
    let shutdown = Shutdown::new();
    let addr = grpc::serve(&server, service.routes(&server), shutdown.clone())
        .await
        .unwrap();
    let client = IngestClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Fixture {
        addr,
        client,
        bus,
        blob_dir,
        roots,
        _bus_dir: bus_dir,
        shutdown,
    }
}

/// Everything on `topic` so far.
async fn drain(bus: &dyn EventBus, topic: &str) -> Vec<Message> {
    static N: AtomicU64 = AtomicU64::new(0);
    let group = format!("probe-{}", N.fetch_add(1, Ordering::Relaxed));
    let mut sub = bus
        .subscribe(
            &group,
            &[topic],
            SubscribeOpts {
                from: StartFrom::Earliest,
            },
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(m) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        out.push(m.unwrap());
    }
    out
}

fn upload(meta: Option<TrackMetadata>, data: Vec<u8>, chunk: usize) -> Vec<UploadChunk> {
    let mut v: Vec<UploadChunk> = meta
        .map(|m| UploadChunk {
            chunk: Some(upload_chunk::Chunk::Metadata(m)),
        })
        .into_iter()
        .collect();
    v.extend(data.chunks(chunk).map(|c| UploadChunk {
        chunk: Some(upload_chunk::Chunk::Data(c.to_vec())),
    }));
    v
}

fn named(filename: &str) -> TrackMetadata {
    TrackMetadata {
        filename: filename.into(),
        title: "A clip".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn uploads_are_validated_stored_once_and_published() {
    let mut f = fixture(IngestOptions::default(), None).await;
    let wav = std::fs::read(WAV).unwrap();
    let reply = f
        .client
        .upload_track(tokio_stream::iter(upload(
            Some(named("clip.wav")),
            wav.clone(),
            64 * 1024,
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.track_id.starts_with("trk-"), "{reply:?}");
    assert_eq!(
        (reply.duplicate, reply.bytes_stored),
        (false, wav.len() as u64)
    );
    let again = f
        .client
        .upload_track(tokio_stream::iter(upload(
            Some(named("clip.wav")),
            wav.clone(),
            1 << 20,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.track_id.as_str(), again.duplicate),
        (reply.track_id.as_str(), true)
    );

    let events = drain(f.bus.as_ref(), topics::TRACK_INGESTED).await;
    assert_eq!(events.len(), 2);
    let e = TrackIngested::decode(events[0].payload.as_slice()).unwrap();
    assert_eq!(e.track_id, reply.track_id);
    assert_eq!(e.sha256, BlobStore::id_of(&wav));
    assert_eq!(std::fs::read(&e.blob_path).unwrap(), wav);
    assert!(Path::new(&e.blob_path).starts_with(f.blob_dir.path()));
    assert_eq!(events[0].key.as_deref(), Some(reply.track_id.as_bytes()));

    // The archive's own id wins when given.
    let meta = TrackMetadata {
        external_id: "bwv-1004-5".into(),
        ..named("chaconne.wav")
    };
    let own = f
        .client
        .upload_track(tokio_stream::iter(upload(Some(meta), wav, 1 << 20)))
        .await
        .unwrap();
    assert_eq!(own.into_inner().track_id, "bwv-1004-5");
}

#[tokio::test]
async fn an_upload_past_its_deadline_is_stopped_with_deadline_exceeded_and_publishes_nothing() {
    let mut f = fixture(IngestOptions::default(), None).await;
    let wav = std::fs::read(WAV).unwrap();
    // A slow client: the metadata, then the audio 500 ms later — past a 100 ms deadline.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let chunks = upload(Some(named("slow.wav")), wav.clone(), 1 << 20);
    tokio::spawn(async move {
        for (i, c) in chunks.into_iter().enumerate() {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if tx.send(c).await.is_err() {
                return;
            }
        }
    });
    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.set_timeout(Duration::from_millis(100));
    let err = f.client.upload_track(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("UploadTrack"), "{err:?}");
    assert!(
        drain(f.bus.as_ref(), topics::TRACK_INGESTED)
            .await
            .is_empty()
    );
    // The server is unaffected: the same upload within its deadline goes through.
    let mut req = tonic::Request::new(tokio_stream::iter(upload(
        Some(named("slow.wav")),
        wav,
        1 << 20,
    )));
    req.set_timeout(Duration::from_secs(30));
    let reply = f.client.upload_track(req).await.unwrap().into_inner();
    assert!(!reply.duplicate, "{reply:?}");
    assert_eq!(drain(f.bus.as_ref(), topics::TRACK_INGESTED).await.len(), 1);
}

#[tokio::test]
async fn bad_uploads_are_refused_with_a_reason_and_nothing_is_published() {
    let mut f = fixture(
        IngestOptions {
            max_upload_bytes: 200_000,
            ..IngestOptions::default()
        },
        None,
    )
    .await;
    let wav = std::fs::read(WAV).unwrap();
    let cases: Vec<(Vec<UploadChunk>, Code, &str)> = vec![
        (
            upload(Some(named("noise.mp3")), vec![0x5a; 5000], 1000),
            Code::InvalidArgument,
            "noise.mp3: not usable audio",
        ),
        (
            upload(
                Some(named("cut.wav")),
                wav[..wav.len().min(3000)].to_vec(),
                1000,
            ),
            Code::InvalidArgument,
            "cut.wav: not usable audio",
        ),
        (
            upload(Some(named("empty.wav")), vec![], 1),
            Code::InvalidArgument,
            "no audio bytes",
        ),
        (
            upload(Some(named("big.wav")), vec![0; 300_000], 64 * 1024),
            Code::ResourceExhausted,
            "limit is 200000 bytes",
        ),
        (
            [
                upload(None, wav[..100].to_vec(), 100),
                upload(Some(named("late.wav")), vec![], 1),
            ]
            .concat(),
            Code::InvalidArgument,
            "metadata must be the first message",
        ),
        (
            upload(
                Some(TrackMetadata {
                    external_id: "no spaces".into(),
                    ..named("x.wav")
                }),
                wav[..1000].to_vec(),
                1000,
            ),
            Code::InvalidArgument,
            "external_id",
        ),
    ];
    for (stream, code, want) in cases {
        let err = f
            .client
            .upload_track(tokio_stream::iter(stream))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(want),
            "{:?} should mention {want:?}",
            err.message()
        );
    }
    assert!(
        drain(f.bus.as_ref(), topics::TRACK_INGESTED)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn ingest_by_path_reads_only_inside_the_allowed_roots() {
    let off = fixture(IngestOptions::default(), None).await;
    let mut client = off.client.clone();
    let req = |p: &str| IngestPathRequest {
        path: p.into(),
        metadata: None,
    };
    let err = client.ingest_path(req(WAV)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("--allow-path"));

    let mut f = fixture(
        IngestOptions {
            allowed_roots: vec![PathBuf::from("set")],
            ..IngestOptions::default()
        },
        None,
    )
    .await;
    let inside = f.roots.path().join("clip.wav");
    std::fs::copy(WAV, &inside).unwrap();
    let ok = f
        .client
        .ingest_path(req(&format!("file://{}", inside.display())))
        .await
        .unwrap();
    assert!(ok.into_inner().track_id.starts_with("trk-"));
    let escape = format!("{}/../{}", f.roots.path().display(), "etc");
    for (path, code) in [
        (WAV.to_owned(), Code::PermissionDenied),
        (escape, Code::NotFound),
        ("s3://bucket/x.wav".to_owned(), Code::InvalidArgument),
    ] {
        let err = f.client.ingest_path(req(&path)).await.unwrap_err();
        assert_eq!(err.code(), code, "{path}: {err:?}");
    }
    let events = drain(f.bus.as_ref(), topics::TRACK_INGESTED).await;
    assert_eq!(events.len(), 1);
    let e = TrackIngested::decode(events[0].payload.as_slice()).unwrap();
    assert_eq!(e.metadata.unwrap().filename, "clip.wav");
}

#[tokio::test]
async fn listens_are_validated_published_by_user_and_refusals_dead_lettered() {
    let mut f = fixture(
        IngestOptions {
            max_batch: 4,
            ..IngestOptions::default()
        },
        None,
    )
    .await;
    let now = now_ms();
    let listen = |user: &str, track: &str, fraction: f32, event: &str| ListenRequest {
        user_id: user.into(),
        track_id: track.into(),
        timestamp_ms: now,
        play_fraction: fraction,
        skipped: false,
        event_id: event.into(),
        session_hint: String::new(),
    };
    let ack = f
        .client
        .record_listen(listen("ana", "known", 1.0, "e1"))
        .await
        .unwrap();
    assert_eq!(ack.into_inner().event_id, "e1");
    let generated = f
        .client
        .record_listen(listen("ana", "known", 1.0, ""))
        .await
        .unwrap();
    assert!(generated.into_inner().event_id.starts_with("ev-"));

    let err = f
        .client
        .record_listen(listen("ana", "ghost", 1.0, "e2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("unknown track id `ghost`"),
        "{err:?}"
    );
    let err = f
        .client
        .record_listen(listen("a b", "known", 1.0, "e3"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("user id"), "{err:?}");

    let batch = ListenBatch {
        listens: vec![
            listen("ben", "known", 0.5, "b1"),
            listen("ben", "known", f32::NAN, "b2"),
            listen("ben", "known", 1.0, "b3"),
        ],
    };
    let ack = f.client.record_listens(batch).await.unwrap().into_inner();
    assert_eq!((ack.accepted, ack.rejected), (2, 1));
    assert!(
        !ack.items[1].accepted && ack.items[1].reason.contains("play fraction"),
        "{ack:?}"
    );
    let too_many = ListenBatch {
        listens: vec![listen("ben", "known", 1.0, ""); 5],
    };
    let err = f.client.record_listens(too_many).await.unwrap_err();
    assert!(err.message().contains("at most 4"), "{err:?}");

    let listens = drain(f.bus.as_ref(), topics::LISTEN).await;
    let ids: Vec<String> = listens
        .iter()
        .map(|m| {
            ListenRecorded::decode(m.payload.as_slice())
                .unwrap()
                .event_id
        })
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(
        (ids[0].as_str(), ids[2].as_str(), ids[3].as_str()),
        ("e1", "b1", "b3")
    );
    assert_eq!(listens[2].key.as_deref(), Some(b"ben".as_slice()));

    let dead = drain(f.bus.as_ref(), DEAD_LETTER_TOPIC).await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| String::from_utf8_lossy(m.header(HEADER_REASON).unwrap()).into_owned())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("ghost") && reasons[2].contains("play fraction"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_configured_token_is_required_but_not_for_health() {
    let mut f = fixture(IngestOptions::default(), Some("s3cret")).await;
    let err = f
        .client
        .record_listens(ListenBatch::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(format!("http://{}", f.addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let ok = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "readiness".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        ok.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}
