//! Property: whatever the filter and limit, search returns no id twice, at most `limit`
//! hits, only points the filter admits — and on the embedded index the same ids as exact
//! search (it scans below its indexing threshold).

use std::collections::HashSet;
use std::sync::OnceLock;

use cadenza_index::contract::{brute_force, catalogue, spec};
use cadenza_index::{
    CollectionSpec, Condition, Distance, EdgeIndex, Filter, MemoryIndex, Point, SearchRequest,
    VectorIndex,
};
use proptest::prelude::*;

const DIM: usize = 8;
const N: usize = 300;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    edge: EdgeIndex,
    memory: MemoryIndex,
    points: Vec<Point>,
    spec: CollectionSpec,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = spec("props", DIM, Distance::Cosine);
        let points = catalogue(N, DIM, 13);
        let (edge, memory) = runtime.block_on(async {
            let edge = EdgeIndex::open(dir.path()).await.unwrap();
            let memory = MemoryIndex::new();
            for index in [&edge as &dyn VectorIndex, &memory] {
                index.ensure_collection(&spec).await.unwrap();
                index.upsert("props", points.clone()).await.unwrap();
            }
            (edge, memory)
        });
        Fixture {
            runtime,
            edge,
            memory,
            points,
            spec,
            _dir: dir,
        }
    })
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        prop::sample::select(vec![
            "baroque",
            "classical",
            "romantic",
            "folk song",
            "jazz"
        ])
        .prop_map(|g| Condition::keyword("genre", g)),
        (0..8u32).prop_map(|t| Condition::keyword("tags", format!("t{t}"))),
        any::<bool>().prop_map(|b| Condition::boolean("solo", b)),
        (1600i64..2000).prop_map(|y| Condition::integer("year", y)),
        prop::collection::vec(0u64..(N as u64 * 3 + 2), 0..40).prop_map(Condition::HasId),
        range("year", 1600.0..2000.0),
        range("tempo", 40.0..200.0),
    ]
}

/// A range with at least one bound (an unbounded one is refused by every index).
fn range(key: &'static str, span: std::ops::Range<f64>) -> impl Strategy<Value = Condition> {
    (
        prop::option::of(span.clone()),
        prop::option::of(span.clone()),
        span,
    )
        .prop_map(move |(gte, lte, fallback)| match (gte, lte) {
            (None, None) => Condition::range(key, Some(fallback), None),
            (gte, lte) => Condition::range(key, gte, lte),
        })
}

fn filter() -> impl Strategy<Value = Option<Filter>> {
    prop::option::of(
        (
            prop::collection::vec(condition(), 0..3),
            prop::collection::vec(condition(), 0..3),
        )
            .prop_map(|(must, must_not)| Filter { must, must_not }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn search_is_a_set_of_at_most_limit_admitted_points(
        filter in filter(),
        limit in 0usize..60,
        query in prop::collection::vec(-1.0f32..1.0, DIM),
        threshold in prop::option::of(-0.5f32..0.9),
    ) {
        prop_assume!(query.iter().any(|x| x.abs() > 1e-3));
        let f = fixture();
        let request = SearchRequest {
            vector: query,
            limit,
            filter: filter.clone(),
            with_payload: true,
            with_vector: false,
            score_threshold: threshold,
            ef: None,
        };
        let exact = brute_force(&f.points, &f.spec, &request);
        // Points within float noise of the threshold may fall either side of it.
        let borderline = |s: f32| threshold.is_some_and(|t| (s - t).abs() < 1e-4);
        let comparable = !exact.iter().any(|(_, s)| borderline(*s));
        let exact: Vec<_> = exact.iter().map(|(id, _)| *id).collect();
        for (name, index) in [("edge", &f.edge as &dyn VectorIndex), ("memory", &f.memory)] {
            let hits = f.runtime.block_on(index.search("props", &request)).unwrap();
            prop_assert!(hits.len() <= limit);
            let ids: HashSet<_> = hits.iter().map(|h| h.id).collect();
            prop_assert_eq!(ids.len(), hits.len(), "duplicate ids from {}", name);
            for h in &hits {
                prop_assert!(
                    filter.as_ref().is_none_or(|fl| fl.matches(h.id, &h.payload)),
                    "{} returned {} (payload {:?}), which the filter refuses",
                    name,
                    h.id,
                    h.payload
                );
            }
            if comparable && !hits.iter().any(|h| borderline(h.score)) {
                let got: Vec<_> = hits.iter().map(|h| h.id).collect();
                prop_assert_eq!(&got, &exact, "{} differs from exact", name);
            }
        }
    }
}
