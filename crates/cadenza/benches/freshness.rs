//! Freshness benchmark (`make bench-freshness`): how soon what a listener does shows in what
//! they are recommended, and how soon a new upload can be recommended, on the real binaries.
//!
//! * listen → recommendation: after `RecordListen` returns, `Recommend` is called back to back
//!   until the listened track has left the list (heard tracks are excluded); the time from the
//!   acknowledgement to that reply, over many listens: p50 / p99.
//! * upload → `SimilarTracks`: from `UploadTrack` returning to the new track appearing among
//!   the neighbours of a track already there.
//!
//! Both for `cadenza up` (embedded) and for the four services over Apache Kafka (each with its
//! own qdrant-edge index). The reference in the same run is one `Recommend` round trip on the
//! same system: the floor that polling can resolve; each figure is also printed as a ratio to it.
//!
//! Usage: `cargo bench -p cadenza --bench freshness [-- --listens N] [--no-kafka]`
//! (`make bench-freshness` builds the release binaries first).

#[path = "../tests/e2e/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use cadenza_proto::v1::{ListenRequest, RecommendRequest, SimilarRequest, TrackMetadata};
use harness::*;

fn percentile(xs: &mut [Duration], p: f64) -> Duration {
    xs.sort();
    xs[((xs.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Measures both figures on a running system whose corpus is ingested except `held_back`.
async fn measure(
    label: &str,
    api: &mut Clients,
    ids: &[String],
    held_back: &(std::path::PathBuf, TrackMetadata),
    listens: usize,
) {
    // Reference: plain Recommend round trips.
    let user = format!("bench-{label}");
    api.ingest
        .record_listen(ListenRequest {
            user_id: user.clone(),
            track_id: ids[0].clone(),
            timestamp_ms: now_ms() - 10_000_000,
            play_fraction: 1.0,
            event_id: format!("{user}-seed"),
            ..Default::default()
        })
        .await
        .unwrap();
    let all = ids.len() as u32;
    let request = || RecommendRequest {
        user_id: user.clone(),
        k: all,
        ..Default::default()
    };
    let mut rtt = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rtt.len() < 50 {
        let t = Instant::now();
        if api.rec.recommend(request()).await.is_ok() {
            rtt.push(t.elapsed());
        } else {
            assert!(
                Instant::now() < deadline,
                "{label}: the first listen never reached the ranker"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let rtt_p50 = percentile(&mut rtt, 0.5);

    let mut fresh = Vec::new();
    for i in 0..listens.min(ids.len() - 1) {
        let track = ids[i + 1].clone();
        let t0 = Instant::now();
        api.ingest
            .record_listen(ListenRequest {
                user_id: user.clone(),
                track_id: track.clone(),
                timestamp_ms: now_ms() - 10_000_000 + i as i64 * 1000 + 1000,
                play_fraction: 1.0,
                event_id: format!("{user}-{i}"),
                ..Default::default()
            })
            .await
            .unwrap();
        let acked = Instant::now();
        loop {
            let reply = api.rec.recommend(request()).await.unwrap().into_inner();
            if !reply.tracks.iter().any(|t| t.track_id == track) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{label}: listen {i} never reflected"
            );
        }
        fresh.push(acked.elapsed());
    }
    let (p50, p99) = (percentile(&mut fresh, 0.5), percentile(&mut fresh, 0.99));

    // A new upload among the neighbours of an existing track.
    let (path, meta) = held_back;
    let t0 = Instant::now();
    let new_id = upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
        .await
        .unwrap()
        .track_id;
    let uploaded = Instant::now();
    let upload_s;
    loop {
        let reply = api
            .rec
            .similar_tracks(SimilarRequest {
                track_id: ids[0].clone(),
                k: all,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if reply.tracks.iter().any(|t| t.track_id == new_id) {
            upload_s = uploaded.elapsed();
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{label}: the upload never appeared"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{label:<9} listen→recommendation over {} listens: p50 {:.1} ms, p99 {:.1} ms | reference Recommend round trip p50 {:.2} ms (p99 = {:.0}× it) | upload→SimilarTracks {:.0} ms",
        fresh.len(),
        ms(p50),
        ms(p99),
        ms(rtt_p50),
        p99.as_secs_f64() / rtt_p50.as_secs_f64(),
        ms(upload_s)
    );
}

async fn ingest_all(
    api: &mut Clients,
    clips: &[(std::path::PathBuf, TrackMetadata)],
    procs: &[&Proc],
) -> Vec<String> {
    let mut ids = Vec::new();
    for (path, meta) in clips {
        ids.push(
            upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
                .await
                .unwrap()
                .track_id,
        );
    }
    wait_tracks(api, clips.len(), procs).await;
    ids
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listens = args
        .iter()
        .position(|a| a == "--listens")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(30);
    let kafka =
        !args.iter().any(|a| a == "--no-kafka") && std::env::var_os("CADENZA_SKIP_KAFKA").is_none();
    let mut clips = corpus(usize::MAX);
    let held_back = clips.pop().expect("a corpus");
    let dir = tempfile::tempdir().unwrap();

    // Embedded: cadenza up.
    {
        let addr = free_addr();
        let data = dir.path().join("up").display().to_string();
        let args = [
            "up",
            "--data-dir",
            &data,
            "--grpc-addr",
            &addr.to_string(),
            "--metrics-addr",
            "off",
        ];
        let up = Proc::start(
            "cadenza up",
            binary("cadenza"),
            &args,
            &[],
            dir.path().join("up.log"),
        );
        let channel = ready(addr, &[&up]).await;
        let mut api = Clients::new(channel.clone(), channel);
        let ids = ingest_all(&mut api, &clips, &[&up]).await;
        measure("embedded", &mut api, &ids, &held_back, listens).await;
    }

    if !kafka {
        println!("kafka     skipped (--no-kafka or CADENZA_SKIP_KAFKA)");
        return;
    }
    let broker = cadenza_testkit::KafkaBroker::start().expect("Apache Kafka broker");
    let blobs = dir.path().join("blobs").display().to_string();
    let env = |data: &str, grpc: std::net::SocketAddr| {
        vec![
            ("CADENZA_KAFKA_BROKERS", broker.bootstrap()),
            ("CADENZA_TOPIC_PARTITIONS", "3".to_owned()),
            ("CADENZA_INSTANCE_ID", "bench".to_owned()),
            (
                "CADENZA_DATA_DIR",
                dir.path().join(data).display().to_string(),
            ),
            ("CADENZA_BLOB_DIR", blobs.clone()),
            ("CADENZA_GRPC_ADDR", grpc.to_string()),
            ("CADENZA_METRICS_ADDR", free_addr().to_string()),
        ]
    };
    let (ia, fa, sa, ra) = (free_addr(), free_addr(), free_addr(), free_addr());
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let ingest = Proc::start(
        "ingest",
        binary("cadenza-ingest"),
        &[],
        &env("ingest", ia),
        log("ingest"),
    );
    let fe = Proc::start(
        "feature-extraction",
        binary("cadenza-feature-extraction"),
        &[],
        &env("fe", fa),
        log("fe"),
    );
    let agg = Proc::start(
        "session-aggregation",
        binary("cadenza-session-aggregation"),
        &[],
        &env("sa", sa),
        log("sa"),
    );
    let ranking = Proc::start(
        "ranking",
        binary("cadenza-ranking"),
        &[],
        &env("ranking", ra),
        log("ranking"),
    );
    let procs = [&ingest, &fe, &agg, &ranking];
    let mut api = Clients::new(ready(ia, &procs).await, ready(ra, &procs).await);
    let ids = ingest_all(&mut api, &clips, &procs).await;
    measure("kafka", &mut api, &ids, &held_back, listens).await;
}
