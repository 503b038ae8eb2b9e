//! The index contract: scenarios every [`VectorIndex`] implementation must pass, compared
//! with a brute-force reference computed here. Each scenario takes the index and a
//! collection-name prefix and uses (then deletes) its own collections, so scenarios can
//! share one server and run concurrently.
//!
//! [`contract_tests!`](crate::contract_tests) turns every scenario into a `#[tokio::test]`
//! for a [`Subject`]; the crate's own `tests/contract` runs it against `MemoryIndex`,
//! `EdgeIndex`, and `QdrantIndex` when `QDRANT_URL` is set.

use std::any::Any;
use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::vector::{better, passes, prepare, score};
use crate::{
    CollectionSpec, Condition, Distance, FieldKind, Filter, IndexError, Payload, Point, PointId,
    SearchRequest, VectorIndex,
};

/// One implementation under test, plus whatever must outlive it (a temporary directory).
pub struct Subject {
    /// The index.
    pub index: Box<dyn VectorIndex>,
    /// Prefix of every collection name the scenarios create (unique per run on a shared
    /// server).
    pub prefix: String,
    keep: Vec<Box<dyn Any + Send>>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("index", &self.index)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// A subject whose collections are named `<prefix>_<scenario>`.
    pub fn new(index: impl VectorIndex + 'static, prefix: impl Into<String>) -> Self {
        Self {
            index: Box::new(index),
            prefix: prefix.into(),
            keep: Vec::new(),
        }
    }

    /// Keeps `guard` (e.g. a `TempDir`) alive as long as the subject.
    pub fn keeping(mut self, guard: impl Any + Send) -> Self {
        self.keep.push(Box::new(guard));
        self
    }
}

/// Expands to one `#[tokio::test]` per contract scenario, each awaiting `$subject` (an
/// expression giving a future of `Option<Subject>`; `None` skips the scenario). The calling
/// crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! contract_tests {
    ($subject:expr) => {
        $crate::contract_tests!(@each $subject;
            ensure_collection_is_idempotent,
            dimension_or_distance_mismatch_is_an_error,
            unknown_collection_is_an_error,
            upsert_then_get_and_count,
            upsert_overwrites_by_id,
            delete_removes_points,
            search_matches_brute_force,
            filters_follow_reference_semantics,
            score_threshold_cuts_results,
            invalid_vector_is_rejected_and_nothing_else_changes,
            scroll_covers_every_id_once,
            search_returns_what_was_asked,
        );
    };
    (@each $subject:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                if let Some(subject) = $subject.await {
                    $crate::contract::$scenario(&*subject.index, &subject.prefix).await;
                }
            }
        )*
    };
}

const GENRES: [&str; 4] = ["baroque", "classical", "romantic", "folk song"];

/// A random vector with components in [-1, 1).
pub fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `n` seeded points with ids 1..=n (odd gaps) and a payload of every field kind.
pub fn catalogue(n: usize, dim: usize, seed: u64) -> Vec<Point> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let id = (i as u64) * 3 + 1;
            let payload = json!({
                "genre": GENRES[i % GENRES.len()],
                "year": 1600 + (i as i64 * 7) % 400,
                "tempo": 40.0 + rng.random_range(0.0f64..160.0),
                "solo": i % 3 == 0,
                "tags": [format!("t{}", i % 5), format!("t{}", i % 7)],
            });
            Point::new(id, random_vector(&mut rng, dim)).with_payload(as_payload(payload))
        })
        .collect()
}

fn as_payload(v: serde_json::Value) -> Payload {
    v.as_object().expect("a JSON object").clone()
}

/// The spec the scenarios use: every field of [`catalogue`] indexed.
pub fn spec(name: &str, dim: usize, distance: Distance) -> CollectionSpec {
    CollectionSpec::new(name, dim, distance)
        .index("genre", FieldKind::Keyword)
        .index("year", FieldKind::Integer)
        .index("tempo", FieldKind::Float)
        .index("solo", FieldKind::Bool)
        .index("tags", FieldKind::Keyword)
}

/// Exact answer: (id, score) best first.
pub fn brute_force(
    points: &[Point],
    spec: &CollectionSpec,
    request: &SearchRequest,
) -> Vec<(PointId, f32)> {
    let q = prepare(spec, None, &request.vector).expect("valid query");
    let mut hits: Vec<(f32, PointId)> = points
        .iter()
        .filter(|p| {
            request
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(p.id, &p.payload))
        })
        .map(|p| {
            let v = prepare(spec, Some(p.id), &p.vector).expect("valid point");
            (score(spec.distance, &q, &v), p.id)
        })
        .filter(|(s, _)| passes(spec.distance, *s, request.score_threshold))
        .collect();
    hits.sort_by(|a, b| better(spec.distance, *a, *b));
    hits.truncate(request.limit);
    hits.into_iter().map(|(s, id)| (id, s)).collect()
}

async fn fresh(index: &dyn VectorIndex, spec: &CollectionSpec) {
    index
        .delete_collection(&spec.name)
        .await
        .expect("delete_collection");
    index
        .ensure_collection(spec)
        .await
        .expect("ensure_collection");
}

async fn cleanup(index: &dyn VectorIndex, name: &str) {
    index
        .delete_collection(name)
        .await
        .expect("delete_collection");
}

async fn load(index: &dyn VectorIndex, name: &str, points: &[Point]) {
    for chunk in points.chunks(200) {
        index.upsert(name, chunk.to_vec()).await.expect("upsert");
    }
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
}

fn assert_same_vector(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "vector length");
    for (g, w) in got.iter().zip(want) {
        assert!(close(*g, *w), "vector {got:?} differs from {want:?}");
    }
}

/// Creating twice is a no-op that keeps the data; new indexed fields may be added.
pub async fn ensure_collection_is_idempotent(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_idem");
    let spec = CollectionSpec::new(&name, 4, Distance::Cosine);
    fresh(index, &spec).await;
    index.ensure_collection(&spec).await.expect("second ensure");
    assert_eq!(index.count(&name).await.unwrap(), 0);
    index
        .upsert(&name, vec![Point::new(1, vec![1.0, 0.0, 0.0, 0.0])])
        .await
        .unwrap();
    index.ensure_collection(&spec).await.expect("third ensure");
    let more = spec.clone().index("genre", FieldKind::Keyword);
    index
        .ensure_collection(&more)
        .await
        .expect("ensure adding an index");
    index.ensure_collection(&more).await.expect("ensure again");
    assert_eq!(
        index.count(&name).await.unwrap(),
        1,
        "ensure must keep the data"
    );
    cleanup(index, &name).await;
}

/// A collection never changes dimension or distance behind the caller's back.
pub async fn dimension_or_distance_mismatch_is_an_error(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_dims");
    let spec = CollectionSpec::new(&name, 8, Distance::Cosine);
    fresh(index, &spec).await;
    let err = index
        .ensure_collection(&CollectionSpec::new(&name, 16, Distance::Cosine))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::DimensionMismatch {
                expected: 8,
                got: 16,
                ..
            }
        ),
        "{err}"
    );
    let err = index
        .ensure_collection(&CollectionSpec::new(&name, 8, Distance::Dot))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::DistanceMismatch { .. }), "{err}");
    let err = index
        .upsert(&name, vec![Point::new(1, vec![1.0; 7])])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::DimensionMismatch {
                expected: 8,
                got: 7,
                ..
            }
        ),
        "{err}"
    );
    let err = index
        .search(&name, &SearchRequest::new(vec![1.0; 9], 3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::DimensionMismatch {
                expected: 8,
                got: 9,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(index.count(&name).await.unwrap(), 0);
    let bad = CollectionSpec::new("bad/name", 8, Distance::Cosine);
    let err = index.ensure_collection(&bad).await.unwrap_err();
    assert!(matches!(err, IndexError::InvalidName(_)), "{err}");
    cleanup(index, &name).await;
}

/// Every operation on a collection nobody created says so.
pub async fn unknown_collection_is_an_error(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_nobody");
    index.delete_collection(&name).await.unwrap();
    let unknown = |r: Result<(), IndexError>| {
        assert!(
            matches!(r, Err(IndexError::UnknownCollection(ref n)) if *n == name),
            "{r:?}"
        );
    };
    unknown(index.upsert(&name, vec![Point::new(1, vec![1.0])]).await);
    unknown(index.delete(&name, &[1]).await);
    unknown(index.get(&name, &[1], false).await.map(drop));
    unknown(
        index
            .search(&name, &SearchRequest::new(vec![1.0], 1))
            .await
            .map(drop),
    );
    unknown(index.scroll(&name, None, 10).await.map(drop));
    unknown(index.count(&name).await.map(drop));
    assert!(!index.delete_collection(&name).await.unwrap());
}

/// What goes in comes out: payload exactly, vector (normalised for Cosine), in asked order.
pub async fn upsert_then_get_and_count(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_get");
    let spec = spec(&name, 16, Distance::Cosine);
    fresh(index, &spec).await;
    let points = catalogue(50, 16, 1);
    load(index, &name, &points).await;
    assert_eq!(index.count(&name).await.unwrap(), 50);
    let (a, b) = (&points[7], &points[3]);
    let got = index
        .get(&name, &[a.id, 999_999, b.id, a.id], true)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    for (g, want) in got.iter().zip([a, b]) {
        assert_eq!(g.payload, want.payload);
        assert_same_vector(&g.vector, &prepare(&spec, None, &want.vector).unwrap());
    }
    let bare = index.get(&name, &[a.id], false).await.unwrap();
    assert!(bare[0].vector.is_empty(), "no vector unless asked");
    assert_eq!(bare[0].payload, a.payload);
    assert!(index.get(&name, &[], true).await.unwrap().is_empty());
    index
        .upsert(&name, Vec::new())
        .await
        .expect("empty upsert is fine");
    assert_eq!(index.count(&name).await.unwrap(), 50);
    cleanup(index, &name).await;
}

/// Upserting an existing id replaces vector and payload; the last of duplicates wins.
pub async fn upsert_overwrites_by_id(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_overwrite");
    let spec = spec(&name, 3, Distance::Dot);
    fresh(index, &spec).await;
    let first = Point::new(5, vec![1.0, 2.0, 3.0])
        .with_payload(as_payload(json!({"genre": "folk song", "year": 1900})));
    index.upsert(&name, vec![first.clone()]).await.unwrap();
    // Read every way first, so an index that keeps what it read has the old point to forget.
    let before = index.get_shared(&name, &[5], true).await.unwrap();
    assert_eq!(before[0].payload, first.payload);
    assert_eq!(
        index.get(&name, &[5], false).await.unwrap()[0].payload,
        first.payload
    );
    let hits = index
        .search(
            &name,
            &SearchRequest::new(vec![1.0, 2.0, 3.0], 1).with_vector(true),
        )
        .await
        .unwrap();
    assert_eq!(hits[0].payload, first.payload);
    let second =
        Point::new(5, vec![-1.0, 0.5, 0.0]).with_payload(as_payload(json!({"genre": "baroque"})));
    index.upsert(&name, vec![second.clone()]).await.unwrap();
    assert_eq!(index.count(&name).await.unwrap(), 1);
    let got = index.get(&name, &[5], true).await.unwrap();
    assert_eq!(
        got[0].payload, second.payload,
        "payload is replaced, not merged"
    );
    assert_same_vector(&got[0].vector, &second.vector);
    let shared = index.get_shared(&name, &[5], true).await.unwrap();
    assert_eq!(
        shared[0].payload, second.payload,
        "a read before the write is served"
    );
    assert_same_vector(&shared[0].vector, &second.vector);
    let hits = index
        .search(
            &name,
            &SearchRequest::new(vec![-1.0, 0.5, 0.0], 1).with_vector(true),
        )
        .await
        .unwrap();
    assert_eq!(
        hits[0].payload, second.payload,
        "a search serves an old payload"
    );
    assert_same_vector(
        hits[0].vector.as_deref().unwrap_or_default(),
        &second.vector,
    );
    let hits = index
        .search(
            &name,
            &SearchRequest::new(vec![1.0, 2.0, 3.0], 5)
                .filter(Filter::must(Condition::integer("year", 1900))),
        )
        .await
        .unwrap();
    assert!(hits.is_empty(), "the old payload must not match: {hits:?}");
    let dup = vec![
        Point::new(6, vec![1.0, 0.0, 0.0]),
        Point::new(6, vec![0.0, 1.0, 0.0]),
    ];
    index.upsert(&name, dup).await.unwrap();
    assert_same_vector(
        &index.get(&name, &[6], true).await.unwrap()[0].vector,
        &[0.0, 1.0, 0.0],
    );
    assert_eq!(index.count(&name).await.unwrap(), 2);
    cleanup(index, &name).await;
}

/// Deleted points are gone from get, search, scroll and count; unknown ids are ignored.
pub async fn delete_removes_points(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_delete");
    let spec = spec(&name, 8, Distance::Cosine);
    fresh(index, &spec).await;
    let points = catalogue(40, 8, 2);
    load(index, &name, &points).await;
    let gone: Vec<PointId> = points.iter().step_by(4).map(|p| p.id).collect();
    // Read first, so an index that keeps what it read has points to forget.
    assert_eq!(
        index.get_shared(&name, &gone, true).await.unwrap().len(),
        gone.len()
    );
    assert_eq!(
        index.get(&name, &gone, false).await.unwrap().len(),
        gone.len()
    );
    let mut asked = gone.clone();
    asked.push(1_000_000);
    index.delete(&name, &asked).await.unwrap();
    index.delete(&name, &[]).await.unwrap();
    assert_eq!(index.count(&name).await.unwrap(), 30);
    assert!(index.get(&name, &gone, false).await.unwrap().is_empty());
    assert!(
        index
            .get_shared(&name, &gone, true)
            .await
            .unwrap()
            .is_empty()
    );
    let hits = index
        .search(&name, &SearchRequest::new(points[0].vector.clone(), 40))
        .await
        .unwrap();
    assert_eq!(hits.len(), 30);
    assert!(hits.iter().all(|h| !gone.contains(&h.id)));
    let (page, _) = index.scroll(&name, None, 100).await.unwrap();
    assert_eq!(page.len(), 30);
    cleanup(index, &name).await;
}

/// On ~500 random points, top-10 ids equal the exact ones (in order) and scores agree.
pub async fn search_matches_brute_force(index: &dyn VectorIndex, prefix: &str) {
    for (distance, tag) in [
        (Distance::Cosine, "cos"),
        (Distance::Dot, "dot"),
        (Distance::Euclid, "l2"),
    ] {
        let name = format!("{prefix}_exact_{tag}");
        let spec = spec(&name, 32, distance);
        fresh(index, &spec).await;
        let points = catalogue(500, 32, 3);
        load(index, &name, &points).await;
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..20 {
            let request = SearchRequest::new(random_vector(&mut rng, 32), 10);
            let got = index.search(&name, &request).await.unwrap();
            let want = brute_force(&points, &spec, &request);
            let got_ids: Vec<_> = got.iter().map(|h| h.id).collect();
            let want_ids: Vec<_> = want.iter().map(|(id, _)| *id).collect();
            assert_eq!(got_ids, want_ids, "{distance:?} top-10 differs from exact");
            for (h, (_, s)) in got.iter().zip(&want) {
                assert!(
                    close(h.score, *s),
                    "{distance:?} score {} vs exact {s}",
                    h.score
                );
            }
        }
        cleanup(index, &name).await;
    }
}

/// Filters select exactly what [`Filter::matches`] selects.
pub async fn filters_follow_reference_semantics(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_filters");
    let spec = spec(&name, 16, Distance::Cosine);
    fresh(index, &spec).await;
    let points = catalogue(300, 16, 5);
    load(index, &name, &points).await;
    let some_ids: Vec<PointId> = points.iter().step_by(7).map(|p| p.id).collect();
    let filters = [
        Filter::must(Condition::keyword("genre", "baroque")),
        Filter::must(Condition::keyword("genre", "folk song")),
        Filter::must_not(Condition::keyword("genre", "baroque")),
        Filter::must(Condition::keyword("tags", "t3")),
        Filter::must(Condition::integer("year", 1607)),
        Filter::must(Condition::boolean("solo", true)),
        Filter::must(Condition::HasId(some_ids.clone())),
        Filter::must_not(Condition::HasId(some_ids.clone())),
        Filter::must(Condition::range("tempo", Some(80.0), Some(120.0))),
        Filter::must(Condition::range("year", Some(1700.0), None)),
        Filter::must(Condition::range("year", None, Some(1650.0))),
        Filter::must(Condition::keyword("genre", "romantic"))
            .and(Condition::range("tempo", None, Some(100.0)))
            .and_not(Condition::boolean("solo", true)),
        Filter::must(Condition::HasId(some_ids.clone())).and_not(Condition::keyword("tags", "t1")),
        // Contradictions (a condition both required and refused) admit nothing.
        Filter::must(Condition::boolean("solo", true)).and_not(Condition::boolean("solo", true)),
        Filter::must(Condition::boolean("solo", false)).and_not(Condition::boolean("solo", false)),
        Filter::must(Condition::keyword("genre", "baroque"))
            .and_not(Condition::keyword("genre", "baroque")),
        Filter::must(Condition::integer("year", 1607)).and_not(Condition::integer("year", 1607)),
        Filter::must(Condition::range("tempo", Some(80.0), Some(120.0))).and_not(Condition::range(
            "tempo",
            Some(80.0),
            Some(120.0),
        )),
        Filter::must(Condition::HasId(some_ids.clone())).and_not(Condition::HasId(some_ids)),
        Filter::must(Condition::boolean("solo", true))
            .and(Condition::keyword("genre", "baroque"))
            .and_not(Condition::boolean("solo", true)),
        Filter::must(Condition::keyword("genre", "nonexistent")),
        Filter::must(Condition::keyword("missing_field", "x")),
        Filter::default(),
    ];
    let mut rng = StdRng::seed_from_u64(6);
    for filter in filters {
        let query = random_vector(&mut rng, 16);
        for limit in [10, 300] {
            let request = SearchRequest::new(query.clone(), limit).filter(filter.clone());
            let got: Vec<_> = index
                .search(&name, &request)
                .await
                .unwrap()
                .iter()
                .map(|h| h.id)
                .collect();
            let want: Vec<_> = brute_force(&points, &spec, &request)
                .iter()
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(got, want, "filter {filter:?} limit {limit}");
        }
    }
    let unbounded = SearchRequest::new(vec![1.0; 16], 5)
        .filter(Filter::must(Condition::range("year", None, None)));
    let err = index.search(&name, &unbounded).await.unwrap_err();
    assert!(matches!(err, IndexError::InvalidRequest(_)), "{err}");
    let bad_key =
        SearchRequest::new(vec![1.0; 16], 5).filter(Filter::must(Condition::keyword("a b", "x")));
    let err = index.search(&name, &bad_key).await.unwrap_err();
    assert!(matches!(err, IndexError::InvalidRequest(_)), "{err}");
    cleanup(index, &name).await;
}

/// Nothing worse than the threshold comes back, and nothing better is lost.
pub async fn score_threshold_cuts_results(index: &dyn VectorIndex, prefix: &str) {
    for (distance, threshold, tag) in [
        (Distance::Cosine, 0.3, "cos"),
        (Distance::Euclid, 2.8, "l2"),
    ] {
        let name = format!("{prefix}_threshold_{tag}");
        let spec = spec(&name, 8, distance);
        fresh(index, &spec).await;
        let points = catalogue(200, 8, 7);
        load(index, &name, &points).await;
        let mut rng = StdRng::seed_from_u64(8);
        let request =
            SearchRequest::new(random_vector(&mut rng, 8), 200).score_threshold(threshold);
        let got = index.search(&name, &request).await.unwrap();
        let want = brute_force(&points, &spec, &request);
        assert!(
            !want.is_empty() && want.len() < 200,
            "threshold {threshold} should cut: {}",
            want.len()
        );
        assert!(
            got.iter()
                .all(|h| passes(distance, h.score, Some(threshold)))
        );
        // Points within float noise of the threshold may fall either side.
        let borderline = |s: f32| (s - threshold).abs() < 1e-4;
        let got_ids: HashSet<_> = got.iter().map(|h| h.id).collect();
        for (id, s) in &want {
            assert!(
                got_ids.contains(id) || borderline(*s),
                "{distance:?}: lost {id} ({s})"
            );
        }
        assert!(got.len() <= want.len() + want.iter().filter(|(_, s)| borderline(*s)).count() + 1);
        cleanup(index, &name).await;
    }
}

/// A batch with one NaN or infinite vector is refused whole; nothing else changes.
pub async fn invalid_vector_is_rejected_and_nothing_else_changes(
    index: &dyn VectorIndex,
    prefix: &str,
) {
    let name = format!("{prefix}_invalid");
    let spec = spec(&name, 4, Distance::Cosine);
    fresh(index, &spec).await;
    let good = Point::new(1, vec![1.0, 0.0, 0.0, 0.0])
        .with_payload(as_payload(json!({"genre": "baroque"})));
    index.upsert(&name, vec![good.clone()]).await.unwrap();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let batch = vec![
            Point::new(1, vec![0.0, 1.0, 0.0, 0.0]),
            Point::new(2, vec![0.0, 0.0, 1.0, 0.0]),
            Point::new(3, vec![0.5, bad, 0.0, 0.0]),
        ];
        let err = index.upsert(&name, batch).await.unwrap_err();
        assert!(
            matches!(err, IndexError::InvalidVector { id: Some(3), .. }),
            "{err}"
        );
        let err = index
            .search(&name, &SearchRequest::new(vec![bad, 0.0, 0.0, 0.0], 3))
            .await
            .unwrap_err();
        assert!(
            matches!(err, IndexError::InvalidVector { id: None, .. }),
            "{err}"
        );
    }
    let err = index
        .upsert(&name, vec![Point::new(4, vec![0.0; 4])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, IndexError::InvalidVector { id: Some(4), .. }),
        "{err}"
    );
    assert_eq!(index.count(&name).await.unwrap(), 1);
    let got = index.get(&name, &[1, 2, 3], true).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_same_vector(&got[0].vector, &good.vector);
    assert_eq!(got[0].payload, good.payload);
    let hits = index
        .search(&name, &SearchRequest::new(vec![1.0, 0.0, 0.0, 0.0], 5))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(close(hits[0].score, 1.0));
    cleanup(index, &name).await;
}

/// Paging through a collection visits every id once, in ascending order.
pub async fn scroll_covers_every_id_once(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_scroll");
    let spec = spec(&name, 4, Distance::Dot);
    fresh(index, &spec).await;
    let points = catalogue(237, 4, 9);
    load(index, &name, &points).await;
    let mut seen = Vec::new();
    let mut offset = None;
    let mut pages = 0;
    loop {
        let (page, next) = index.scroll(&name, offset, 50).await.unwrap();
        assert!(page.len() <= 50);
        for p in &page {
            let want = points.iter().find(|w| w.id == p.id).expect("a known id");
            assert_eq!(p.payload, want.payload);
            assert_same_vector(&p.vector, &want.vector);
        }
        seen.extend(page.iter().map(|p| p.id));
        pages += 1;
        assert!(pages <= 10, "scroll does not terminate");
        match next {
            Some(n) => {
                assert!(
                    page.last().is_some_and(|last| last.id < n),
                    "next offset must move on"
                );
                offset = Some(n);
            }
            None => break,
        }
    }
    let mut want: Vec<_> = points.iter().map(|p| p.id).collect();
    want.sort_unstable();
    assert_eq!(seen, want, "every id exactly once, ascending");
    assert!(matches!(
        index.scroll(&name, None, 0).await,
        Err(IndexError::InvalidRequest(_))
    ));
    let (tail, next) = index.scroll(&name, Some(want[230]), 50).await.unwrap();
    assert_eq!(tail.len(), 7);
    assert_eq!(next, None);
    cleanup(index, &name).await;
}

/// `limit`, `with_payload` and `with_vector` are honoured.
pub async fn search_returns_what_was_asked(index: &dyn VectorIndex, prefix: &str) {
    let name = format!("{prefix}_shape");
    let spec = spec(&name, 8, Distance::Cosine);
    fresh(index, &spec).await;
    let points = catalogue(20, 8, 10);
    load(index, &name, &points).await;
    let q = points[0].vector.clone();
    assert!(
        index
            .search(&name, &SearchRequest::new(q.clone(), 0))
            .await
            .unwrap()
            .is_empty()
    );
    let all = index
        .search(&name, &SearchRequest::new(q.clone(), 100))
        .await
        .unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all[0].id, points[0].id);
    assert!(close(all[0].score, 1.0));
    assert!(
        all.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
    assert!(
        all.iter()
            .all(|h| !h.payload.is_empty() && h.vector.is_none())
    );
    let bare = index
        .search(
            &name,
            &SearchRequest::new(q.clone(), 3)
                .with_payload(false)
                .with_vector(true),
        )
        .await
        .unwrap();
    assert_eq!(bare.len(), 3);
    assert!(bare.iter().all(|h| h.payload.is_empty()));
    let v = bare[0].vector.as_ref().expect("vector asked for");
    assert_same_vector(v, &prepare(&spec, None, &points[0].vector).unwrap());
    cleanup(index, &name).await;
}
