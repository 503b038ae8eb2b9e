//! KNN against random on the real tiny corpus with a real model. Skips with a visible line when
//! the corpus or the model is missing; `make test` sets `CADENZA_CORPUS_REQUIRED=1`, where a
//! missing corpus is a failure.

use std::path::PathBuf;

use cadenza_eval::catalogue::Catalogue;
use cadenza_eval::evaluate::{EvalContext, evaluate};
use cadenza_eval::experiment::Setup;
use cadenza_eval::listeners::ListenerConfig;
use cadenza_eval::methods::{Knn, RandomRanker};

#[test]
fn knn_on_real_embeddings_beats_random_on_the_tiny_corpus() {
    let dir = std::env::var_os("CADENZA_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/corpus/tiny")
        });
    let path = dir.join("catalogue.jsonl");
    let required = std::env::var("CADENZA_CORPUS_REQUIRED").is_ok_and(|v| v == "1");
    if !path.is_file() {
        assert!(
            !required,
            "{} is missing (run `make corpus PRESET=tiny`)",
            path.display()
        );
        eprintln!(
            "skipped: no corpus at {} (run `make corpus PRESET=tiny`)",
            dir.display()
        );
        return;
    }
    let model = cadenza_model::DEFAULT_MODEL;
    if cadenza_model::locate::model(model).is_err() || cadenza_model::locate::onnxruntime().is_err()
    {
        eprintln!("skipped: model {model} or libonnxruntime not found (run `make setup`)");
        return;
    }
    let catalogue = Catalogue::load(&path).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = std::env::var_os("CADENZA_CACHE")
        .map(|c| PathBuf::from(c).join("embeddings"))
        .unwrap_or_else(|| cache.path().to_owned());
    let table =
        cadenza_eval::embeddings::embed_catalogue(&catalogue, model, &cache_dir, false).unwrap();
    assert_eq!(table.len(), catalogue.len());
    let s = Setup::new(
        catalogue,
        ListenerConfig {
            n_users: 200,
            seed: 1,
            ..Default::default()
        },
    );
    let users = s.all_users();
    let cases = s.cases(&users);
    let ctx = EvalContext {
        popularity: s.popularity(&users),
        diversity_space: table.normalized(),
        exclude_seen: true,
        mmr_lambda: None,
    };
    let knn = evaluate(&Knn::new(&table), model, &cases, &ctx);
    let random = evaluate(
        &RandomRanker {
            n_items: table.len(),
            seed: 1,
        },
        model,
        &cases,
        &ctx,
    );
    eprintln!(
        "tiny corpus, {} users: knn NDCG@10 {} HR@10 {}; random NDCG@10 {} HR@10 {}",
        cases.len(),
        knn.ndcg10.show(),
        knn.hr10.show(),
        random.ndcg10.show(),
        random.hr10.show()
    );
    assert!(
        knn.ndcg10.mean > random.ndcg10.mean,
        "KNN on {model} does not beat random"
    );
}
