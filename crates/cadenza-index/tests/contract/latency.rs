//! Latency probe of the embedded index at the archive sizes we expect (run explicitly:
//! `cargo test -p cadenza-index --release --test contract -- --ignored --nocapture latency`).

use std::time::{Duration, Instant};

use cadenza_index::contract::{catalogue, random_vector, spec};
use cadenza_index::{Distance, EdgeIndex, SearchRequest, VectorIndex};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn probe(index: &EdgeIndex, label: &str) {
    let mut rng = StdRng::seed_from_u64(21);
    let mut times = Vec::new();
    for _ in 0..500 {
        let request = SearchRequest::new(random_vector(&mut rng, 200), 50);
        let started = Instant::now();
        let hits = index.search("bench", &request).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(hits.len(), 50);
    }
    times.sort();
    eprintln!(
        "edge search top-50, 10k x 200-d cosine, {label}: p50 {:?}, p99 {:?} (through spawn_blocking)",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "latency probe; run explicitly in release"]
async fn latency_edge_10k_200d() {
    let dir = tempfile::tempdir().unwrap();
    let index = EdgeIndex::open(dir.path()).await.unwrap();
    index
        .ensure_collection(&spec("bench", 200, Distance::Cosine))
        .await
        .unwrap();
    let points = catalogue(10_000, 200, 20);
    let started = Instant::now();
    for chunk in points.chunks(500) {
        index.upsert("bench", chunk.to_vec()).await.unwrap();
    }
    eprintln!(
        "edge upsert 10k x 200-d in batches of 500 (flushed each): {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    for p in points.iter().take(200) {
        index.upsert("bench", vec![p.clone()]).await.unwrap();
    }
    eprintln!(
        "edge single-point upsert (flushed): {:?} mean",
        started.elapsed() / 200
    );
    probe(&index, "before optimize").await;
    let started = Instant::now();
    index.optimize().await.unwrap();
    eprintln!("edge optimize: {:?}", started.elapsed());
    probe(&index, "after optimize").await;
    let wal = dir_size(&dir.path().join("bench").join("shard").join("wal"));
    eprintln!("edge WAL after 10.2k upserts: {} MiB", wal / (1 << 20));
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
