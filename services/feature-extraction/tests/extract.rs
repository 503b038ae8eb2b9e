//! Feature extraction with the real MusiCNN model through ONNX Runtime, over the on-disk bus:
//! a real recording is embedded, indexed and announced; a corrupt blob and a malformed event go
//! to the dead-letter topic with their reasons, and neither stops the track behind them —
//! decoding in process and in the isolated `cadenza-decode` worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadenza_audio::Isolation;
use cadenza_bus::{
    DEAD_LETTER_TOPIC, EventBus, HEADER_REASON, LogBus, Message, StartFrom, SubscribeOpts,
};
use cadenza_feature_extraction::Extractor;
use cadenza_index::{MemoryIndex, VectorIndex};
use cadenza_model::{Embedder, EmbedderOptions};
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{TrackEmbedded, TrackIngested, TrackMetadata};
use cadenza_svc::catalog::{TRACKS, point_id, tracks_spec};
use cadenza_svc::{BlobStore, Shutdown};

const WAV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/parity/clip16k_mono.wav"
);

async fn drain(bus: &dyn EventBus, topic: &str, want: usize) -> Vec<Message> {
    let mut sub = bus
        .subscribe(
            &format!("probe-{topic}"),
            &[topic],
            SubscribeOpts {
                from: StartFrom::Earliest,
            },
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < want && Instant::now() < deadline {
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            out.push(m.unwrap());
        }
    }
    out
}

fn ingested(track_id: &str, sha256: &str, blob_path: &str) -> Vec<u8> {
    TrackIngested {
        track_id: track_id.into(),
        blob_path: blob_path.into(),
        metadata: Some(TrackMetadata {
            title: track_id.into(),
            composer: "Bach".into(),
            ..Default::default()
        }),
        size_bytes: 0,
        ingested_at_ms: 1,
        sha256: sha256.into(),
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeds_real_audio_and_dead_letters_what_it_cannot() {
    embed_and_dead_letter(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_decoding_in_the_isolated_worker() {
    let worker = Isolation::locate()
        .unwrap_or_else(|why| panic!("{why} (`make test` builds every binary before the tests)"));
    embed_and_dead_letter(Some(Isolation::new(worker))).await;
}

async fn embed_and_dead_letter(isolation: Option<Isolation>) {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(LogBus::open(dir.path().join("bus")).await.unwrap());
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(1))
        .await
        .unwrap();
    let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
    let (wav_id, _, _) = blobs.put(&std::fs::read(WAV).unwrap(), "wav").unwrap();
    let (bad_id, bad_path, _) = blobs.put(b"ID3 this is not an mp3 at all", "mp3").unwrap();
    let embedder =
        Arc::new(Embedder::new(cadenza_model::DEFAULT_MODEL, EmbedderOptions::default()).unwrap());
    let dim = embedder.model().spec().embedding_layer().dim;
    let index: Arc<dyn VectorIndex> = Arc::new(MemoryIndex::new());
    index.ensure_collection(&tracks_spec(dim)).await.unwrap();

    for payload in [
        ingested("corrupt", &bad_id, &bad_path.display().to_string()),
        b"\x0a\xff garbage".to_vec(),
        // blob_path is stale (another mount): the content hash finds the file.
        ingested("partita", &wav_id, "/elsewhere/never/mounted.wav"),
    ] {
        bus.publish(topics::TRACK_INGESTED, b"k", payload, vec![])
            .await
            .unwrap();
    }
    let shutdown = Shutdown::new();
    let extractor = Extractor {
        bus: bus.clone(),
        index: Some(index.clone()),
        embedder,
        blobs: Some(blobs),
        isolation,
    };
    let task = tokio::spawn(extractor.run(shutdown.clone()));

    let embedded = drain(bus.as_ref(), topics::TRACK_EMBEDDED, 1).await;
    assert_eq!(embedded.len(), 1);
    let e = TrackEmbedded::decode(embedded[0].payload.as_slice()).unwrap();
    assert_eq!(
        (e.track_id.as_str(), e.dims as usize, e.vector.len()),
        ("partita", dim, dim)
    );
    assert!(e.vector.iter().all(|x| x.is_finite()) && e.vector.iter().any(|x| *x != 0.0));
    assert!(
        !e.top_tags.is_empty() && e.duration_s > 5.0,
        "{:?} {}",
        e.top_tags,
        e.duration_s
    );
    let stored = index
        .get(TRACKS, &[point_id("partita")], true)
        .await
        .unwrap();
    // Cosine collections store the vector normalised: same direction.
    let dot: f32 = stored[0]
        .vector
        .iter()
        .zip(&e.vector)
        .map(|(a, b)| a * b)
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((dot / (norm(&stored[0].vector) * norm(&e.vector)) - 1.0).abs() < 1e-5);
    assert_eq!(stored[0].payload["composer"], "Bach");

    let dead = drain(bus.as_ref(), DEAD_LETTER_TOPIC, 2).await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| String::from_utf8_lossy(m.header(HEADER_REASON).unwrap()).into_owned())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].starts_with("track corrupt:"), "{reasons:?}");
    assert!(
        reasons[1].contains("not a TrackIngested protobuf"),
        "{reasons:?}"
    );
    assert_eq!(index.count(TRACKS).await.unwrap(), 1);
    shutdown.trigger();
    task.await.unwrap().unwrap();
}
