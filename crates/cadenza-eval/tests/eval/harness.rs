//! Sanity of the evaluation harness on a synthetic catalogue whose "audio-like" vectors are
//! metadata plus noise. This tests the harness — that rankers learn when signal exists, that
//! splits do not leak, that metrics compute what they claim — not any embedding.

use std::collections::HashSet;
use std::sync::OnceLock;

use cadenza_eval::embeddings::{metadata_table, random_table};
use cadenza_eval::evaluate::{EvalContext, MethodResult, evaluate};
use cadenza_eval::experiment::{Budget, Method, Setup, train_methods};
use cadenza_eval::listeners::{ListenGenerator, ListenerConfig};
use cadenza_eval::methods::{
    Bert4RecConfig, Checkpoint, ShallowConfig, counts_of, load_ranker, save_ranker,
};
use cadenza_eval::metrics::{Accuracy, accuracy};
use cadenza_eval::synthetic;

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let cat = synthetic::catalogue(240, 1);
        Setup::new(
            cat,
            ListenerConfig {
                n_users: 300,
                seed: 3,
                ..Default::default()
            },
        )
    })
}

fn budget() -> Budget {
    Budget {
        shallow: ShallowConfig {
            max_epochs: 8,
            ..Default::default()
        },
        bert4rec: Bert4RecConfig {
            max_epochs: 30,
            patience: 5,
            max_seconds: Some(60.0),
            ..Default::default()
        },
        id_dim: 32,
    }
}

#[test]
fn every_audio_method_beats_random_by_a_wide_margin() {
    let s = setup();
    let table = metadata_table(&s.catalogue, 32, 1.0, 9);
    let users = s.all_users();
    let data = s.train_set(&users);
    let methods = [
        Method::Random,
        Method::Popularity,
        Method::Knn,
        Method::Multicentroid,
        Method::Shallow,
        Method::Bert4rec,
    ];
    let trained = train_methods(&table, &data, &methods, &budget()).unwrap();
    let ctx = EvalContext {
        popularity: s.popularity(&users),
        diversity_space: table.normalized(),
        exclude_seen: true,
        mmr_lambda: None,
    };
    let cases = s.cases(&users);
    let results: Vec<MethodResult> = trained
        .rankers
        .iter()
        .map(|r| evaluate(r.as_ref(), "metadata", &cases, &ctx))
        .collect();
    for r in &results {
        eprintln!(
            "{:14} HR@10 {}  NDCG@10 {}  HR@50 {}",
            r.method,
            r.hr10.show(),
            r.ndcg10.show(),
            r.hr50.show()
        );
    }
    let random = results.iter().find(|r| r.method == "random").unwrap();
    for r in results
        .iter()
        .filter(|r| ["knn", "multicentroid", "shallow", "bert4rec"].contains(&r.method.as_str()))
    {
        assert!(
            r.hr10.mean > 2.0 * random.hr10.mean && r.hr10.lo > random.hr10.hi,
            "{} HR@10 {} vs random {}",
            r.method,
            r.hr10.show(),
            random.hr10.show()
        );
    }
    let curve = &trained.curves["bert4rec"];
    assert!(curve.len() >= 2, "BERT4Rec recorded a learning curve");
    assert!(
        curve
            .iter()
            .skip(1)
            .any(|p| p.valid_ndcg10 > curve[0].valid_ndcg10),
        "BERT4Rec learned: {curve:?}"
    );
}

#[test]
fn no_test_target_appears_in_its_users_training_input() {
    let s = setup();
    assert!(
        s.splits.len() > 250,
        "most users have enough plays: {}",
        s.splits.len()
    );
    for sp in &s.splits {
        assert!(
            !sp.test_input().contains(&sp.test),
            "{}: test target in input",
            sp.user_id
        );
        assert!(
            !sp.train.contains(&sp.valid),
            "{}: validation target in training",
            sp.user_id
        );
    }
    let data = s.train_set(&s.all_users());
    for (seq, case) in data.sequences.iter().zip(s.cases(&s.all_users())) {
        assert!(!seq.contains(&case.target));
    }
}

#[test]
fn metric_functions_match_hand_computed_values() {
    // Target third of the list: HR 1, NDCG 1/log2(4) = 0.5, MRR 1/3; absent at k = 2.
    let a = accuracy(&[4, 8, 15, 16, 23], &[15], 10);
    assert_eq!(
        a,
        Accuracy {
            hit: 1.0,
            recall: 1.0,
            ndcg: 0.5,
            mrr: 1.0 / 3.0
        }
    );
    assert_eq!(accuracy(&[4, 8, 15], &[15], 2), Accuracy::default());
}

#[test]
fn listeners_are_reproducible_and_follow_their_archetype() {
    let cat = synthetic::catalogue(120, 2);
    let cfg = ListenerConfig {
        n_users: 40,
        seed: 5,
        ..Default::default()
    };
    let (a, la) = ListenGenerator::generate(&cat, cfg.clone());
    let (b, _) = ListenGenerator::generate(&cat, cfg);
    assert_eq!(a, b);
    // Per user, played (not skipped) tracks are better liked than the catalogue on average.
    let mut better = 0;
    for l in &la {
        let plays: Vec<f64> = a
            .iter()
            .filter(|e| e.user_id == l.user_id && !e.skipped)
            .map(|e| l.affinity(&cat.tracks[cat.index_of(&e.track_id).unwrap()]))
            .collect();
        let mean_cat = cat.tracks.iter().map(|t| l.affinity(t)).sum::<f64>() / cat.len() as f64;
        if plays.iter().sum::<f64>() / plays.len().max(1) as f64 > mean_cat {
            better += 1;
        }
    }
    assert!(
        better as f64 >= 0.8 * la.len() as f64,
        "{better}/{}",
        la.len()
    );
    // Per user, events are in time order and ids are unique.
    let ids: HashSet<u64> = a.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), a.len());
    assert!(
        a.windows(2)
            .all(|w| w[0].user_id != w[1].user_id || w[0].ts_ms < w[1].ts_ms)
    );
    assert!(a.iter().any(|e| e.skipped) && a.iter().any(|e| !e.skipped));
}

#[test]
fn checkpoints_serve_the_same_scores() {
    let s = setup();
    let table = random_table(s.catalogue.len(), 16, 4);
    let users: Vec<usize> = (0..60).collect();
    let data = s.train_set(&users);
    let b = Budget {
        shallow: ShallowConfig {
            max_epochs: 2,
            ..Default::default()
        },
        bert4rec: Bert4RecConfig {
            max_epochs: 2,
            ..Default::default()
        },
        id_dim: 16,
    };
    let dir = tempfile::tempdir().unwrap();
    let shallow = cadenza_eval::methods::Shallow::train(&table, &data, &b.shallow).unwrap();
    let bert = cadenza_eval::methods::Bert4Rec::train(&table, &data, b.bert4rec.clone()).unwrap();
    save_ranker(dir.path(), Checkpoint::Shallow(&shallow), &table).unwrap();
    save_ranker(dir.path(), Checkpoint::Bert4Rec(&bert), &table).unwrap();
    save_ranker(dir.path(), Checkpoint::Bert4RecPop(&bert), &table).unwrap();
    save_ranker(dir.path(), Checkpoint::Knn, &table).unwrap();
    let h = &s.splits[0].train;
    let c = counts_of(h);
    use cadenza_eval::methods::Ranker;
    let close = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4);
    assert!(close(
        shallow.score_all(h, &c),
        load_ranker(dir.path(), "shallow", &table)
            .unwrap()
            .score_all(h, &c)
    ));
    assert!(close(
        bert.score_all(h, &c),
        load_ranker(dir.path(), "bert4rec", &table)
            .unwrap()
            .score_all(h, &c)
    ));
    let pop = load_ranker(dir.path(), "bert4rec_pop", &table).unwrap();
    assert_eq!(pop.name(), "bert4rec_pop");
    assert_eq!(
        load_ranker(dir.path(), "knn", &table)
            .unwrap()
            .score_all(h, &c)
            .len(),
        table.len()
    );
    // A checkpoint refuses an item table of the wrong shape.
    assert!(load_ranker(dir.path(), "shallow", &random_table(10, 16, 1)).is_err());

    // Serving checkpoints carry their table and track ids: no table needed to load them.
    let served = tempfile::tempdir().unwrap();
    let ids: Vec<String> = s
        .catalogue
        .tracks
        .iter()
        .map(|t| t.track_id.clone())
        .collect();
    use cadenza_eval::methods::{list_checkpoints, load_for_serving, save_for_serving};
    save_for_serving(served.path(), Checkpoint::Bert4RecPop(&bert), &table, &ids).unwrap();
    save_for_serving(served.path(), Checkpoint::Shallow(&shallow), &table, &ids).unwrap();
    assert_eq!(
        list_checkpoints(served.path()).unwrap(),
        ["bert4rec_pop", "shallow"]
    );
    let loaded = load_for_serving(served.path(), "bert4rec_pop").unwrap();
    assert_eq!(
        (loaded.track_ids, loaded.embedding.as_str()),
        (ids.clone(), "random")
    );
    let fused = cadenza_eval::methods::PopFusion {
        inner: bert,
        name: "bert4rec_pop".into(),
    };
    assert!(close(
        fused.score_all(h, &c),
        loaded.ranker.score_all(h, &c)
    ));
    // An evaluation checkpoint is not a serving one, and ids must match the rows.
    assert!(load_for_serving(dir.path(), "shallow").is_err());
    assert!(
        save_for_serving(served.path(), Checkpoint::Knn, &table, &ids[..3]).is_err(),
        "3 ids for {} rows",
        table.len()
    );
}
