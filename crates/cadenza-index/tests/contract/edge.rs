//! `EdgeIndex` beyond the contract: what survives a restart and a crash.

use std::process::Command;

use cadenza_index::contract::{brute_force, catalogue, random_vector, spec};
use cadenza_index::{
    CollectionSpec, Condition, Distance, EdgeIndex, EdgeOptions, Filter, IndexError, Quantization,
    SearchRequest, VectorIndex,
};
use rand::SeedableRng as _;

const CRASH_DIR_VAR: &str = "CADENZA_INDEX_CRASH_DIR";

/// Drop the index and open the same directory: collections, specs, points, payload
/// indexes and deletions are all still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let points = catalogue(300, 16, 11);
    let tracks = spec("tracks", 16, Distance::Cosine);
    let users = CollectionSpec::new("users", 16, Distance::Dot);
    let query = SearchRequest::new(points[5].vector.clone(), 10)
        .filter(Filter::must(Condition::keyword("genre", "baroque")));
    let before = {
        let index = EdgeIndex::open(dir.path()).await.unwrap();
        index.ensure_collection(&tracks).await.unwrap();
        index.ensure_collection(&users).await.unwrap();
        index.upsert("tracks", points.clone()).await.unwrap();
        index
            .delete("tracks", &[points[0].id, points[1].id])
            .await
            .unwrap();
        index
            .upsert("users", vec![points[2].clone()])
            .await
            .unwrap();
        index.search("tracks", &query).await.unwrap()
    };
    let index = EdgeIndex::open(dir.path()).await.unwrap();
    assert_eq!(index.count("tracks").await.unwrap(), 298);
    assert_eq!(index.count("users").await.unwrap(), 1);
    assert_eq!(index.search("tracks", &query).await.unwrap(), before);
    let got = index
        .get("tracks", &[points[0].id, points[9].id], false)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, points[9].payload);
    // The persisted spec still guards the collection.
    let err = index
        .ensure_collection(&CollectionSpec::new("tracks", 32, Distance::Cosine))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::DimensionMismatch {
                expected: 16,
                got: 32,
                ..
            }
        ),
        "{err}"
    );
    index.ensure_collection(&tracks).await.unwrap();
    // Writes after a restart are applied (engine versions continue where they were).
    let mut moved = points[9].clone();
    moved.vector = points[5].vector.clone();
    index.upsert("tracks", vec![moved]).await.unwrap();
    let top = index
        .search("tracks", &SearchRequest::new(points[5].vector.clone(), 2))
        .await
        .unwrap();
    assert!(top.iter().any(|h| h.id == points[9].id), "{top:?}");
    assert!(index.delete_collection("users").await.unwrap());
    drop(index);
    assert!(!dir.path().join("users").exists());
    let index = EdgeIndex::open(dir.path()).await.unwrap();
    assert!(matches!(
        index.count("users").await,
        Err(IndexError::UnknownCollection(_))
    ));
}

/// A collection directory without its spec (a creation cut short) is cleared on open and
/// can be created again.
#[tokio::test]
async fn unfinished_creation_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("half").join("shard").join("segments")).unwrap();
    let index = EdgeIndex::open(dir.path()).await.unwrap();
    assert!(!dir.path().join("half").exists());
    index
        .ensure_collection(&CollectionSpec::new("half", 4, Distance::Cosine))
        .await
        .unwrap();
    assert_eq!(index.count("half").await.unwrap(), 0);
}

/// Every acknowledged write survives the process aborting (no destructors, no flush on
/// drop): a child process writes, then calls `abort()`, and we reopen its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_abort() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["edge::crash_child", "--exact", "--ignored", "--nocapture"])
        .env(CRASH_DIR_VAR, dir.path())
        .status()
        .unwrap();
    assert!(
        !status.success(),
        "the child must die by abort, got {status}"
    );
    let index = EdgeIndex::open(dir.path()).await.unwrap();
    let points = catalogue(500, 8, 12);
    assert_eq!(index.count("crash").await.unwrap(), 490);
    let (page, _) = index.scroll("crash", None, 1000).await.unwrap();
    let deleted: Vec<_> = points.iter().take(10).map(|p| p.id).collect();
    assert!(page.iter().all(|p| !deleted.contains(&p.id)));
    let last = points.last().unwrap();
    let got = index.get("crash", &[last.id], false).await.unwrap();
    assert_eq!(got[0].payload, last.payload);
}

/// The child half of `acknowledged_writes_survive_abort`; does nothing when run alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by acknowledged_writes_survive_abort"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR_VAR) else {
        return;
    };
    let index = EdgeIndex::open(&dir).await.unwrap();
    index
        .ensure_collection(&spec("crash", 8, Distance::Cosine))
        .await
        .unwrap();
    let points = catalogue(500, 8, 12);
    for chunk in points.chunks(50) {
        index.upsert("crash", chunk.to_vec()).await.unwrap();
    }
    let deleted: Vec<_> = points.iter().take(10).map(|p| p.id).collect();
    index.delete("crash", &deleted).await.unwrap();
    std::process::abort();
}

/// Whether any file under `dir` is named `name`.
fn has_file(dir: &std::path::Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let path = e.path();
            if path.is_dir() {
                has_file(&path, name)
            } else {
                e.file_name() == name
            }
        })
}

/// An int8-quantized collection, once optimized, has quantized vectors on disk (a plain one
/// has none), answers nearly what brute force does, and every score it returns is the exact
/// similarity (hits are re-scored with the original vectors), with and without a filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int8_quantization_keeps_results_and_exact_scores() {
    let dim = 32;
    let points = catalogue(3_000, dim, 5);
    let tracks = spec("tracks", dim, Distance::Cosine);
    // A small indexing threshold (3,000 × 128 B is 375 KiB) so that optimize builds the graph.
    let options = |quantization| EdgeOptions {
        indexing_threshold_kb: Some(64),
        ..EdgeOptions::default().quantization(quantization)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let queries: Vec<SearchRequest> = (0..60)
        .map(|i| {
            let request = SearchRequest::new(random_vector(&mut rng, dim), 10).ef(Some(64));
            if i % 2 == 0 {
                request
            } else {
                request.filter(Filter::must(Condition::keyword("genre", "baroque")))
            }
        })
        .collect();
    for quantization in [Quantization::None, Quantization::Int8] {
        let dir = tempfile::tempdir().unwrap();
        let index = EdgeIndex::open_with(dir.path(), options(quantization))
            .await
            .unwrap();
        index.ensure_collection(&tracks).await.unwrap();
        for chunk in points.chunks(500) {
            index.upsert("tracks", chunk.to_vec()).await.unwrap();
        }
        index.optimize().await.unwrap();
        assert_eq!(
            has_file(dir.path(), "quantized.config.json"),
            quantization == Quantization::Int8,
            "quantized vectors on disk with {quantization}"
        );
        let (mut found, mut asked) = (0, 0);
        for request in &queries {
            let exact = brute_force(&points, &tracks, request);
            let hits = index.search("tracks", request).await.unwrap();
            assert_eq!(hits.len(), request.limit);
            for hit in &hits {
                let p = points.iter().find(|p| p.id == hit.id).unwrap();
                assert!(
                    request
                        .filter
                        .as_ref()
                        .is_none_or(|f| f.matches(p.id, &p.payload)),
                    "hit {} does not pass the filter",
                    hit.id
                );
                let truth = brute_force(
                    std::slice::from_ref(p),
                    &tracks,
                    &SearchRequest::new(request.vector.clone(), 1),
                )[0]
                .1;
                assert!(
                    (hit.score - truth).abs() < 1e-4,
                    "{quantization}: score {} of {} is not its cosine {truth}",
                    hit.score,
                    hit.id
                );
            }
            asked += exact.len();
            found += exact
                .iter()
                .filter(|(id, _)| hits.iter().any(|h| h.id == *id))
                .count();
        }
        let recall = found as f64 / asked as f64;
        eprintln!(
            "{quantization}: recall@10 {recall:.3} over {} queries",
            queries.len()
        );
        assert!(recall >= 0.9, "{quantization}: recall@10 {recall:.3}");
    }
}
