//! `cadenza train`: fit the models the ranking service serves beside its index strategies —
//! the shallow net, BERT4Rec on the frozen audio table, and BERT4Rec with personalised
//! popularity — and write them as serving checkpoints (`methods::save_for_serving`): weights,
//! the item table as trained, and the track id of every row.
//!
//! The listening history is the synthetic listeners' (the evaluation's generator, same seed
//! rules): an archive with a real listen log would train on that instead; the models and the
//! checkpoint format do not care where the sequences come from. Early stopping on validation
//! NDCG@10 decides when each model has learned enough; `--bert-seconds` only bounds the cost.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::catalogue::Catalogue;
use crate::embeddings::embed_catalogue;
use crate::experiment::Setup;
use crate::listeners::ListenerConfig;
use crate::methods::{
    Bert4Rec, Bert4RecConfig, Checkpoint, Shallow, ShallowConfig, save_for_serving,
};

/// Train the served models on a corpus and write their checkpoints.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Corpus preset: reads `data/corpus/<preset>/catalogue.jsonl`.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Catalogue file to use instead of the preset's.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// The embedding the ranking service's index holds (its `--model-version`).
    #[arg(long, default_value = cadenza_model::DEFAULT_MODEL)]
    pub embedding: String,
    /// Folder for the checkpoints (the ranking service's `--models`).
    #[arg(long, default_value = "data/models")]
    pub out: PathBuf,
    /// Synthetic listeners to learn from [default: 150 for tiny, 600 otherwise].
    #[arg(long)]
    pub users: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wall-clock cap on BERT4Rec's training in seconds (early stopping usually ends it first).
    #[arg(long, default_value_t = 900.0)]
    pub bert_seconds: f64,
    /// Embedding cache (vectors keyed by model and file hash).
    #[arg(long, env = "CADENZA_CACHE")]
    pub cache: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `cadenza train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let path = args
        .catalogue
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/corpus/{}/catalogue.jsonl", args.preset)));
    let cat = Catalogue::load(&path).with_context(|| {
        format!(
            "reading the catalogue (build it with `make corpus PRESET={}`)",
            args.preset
        )
    })?;
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("embeddings");
    let table = embed_catalogue(&cat, &args.embedding, &cache, !args.quiet)
        .with_context(|| format!("embedding the catalogue with {}", args.embedding))?;
    let track_ids: Vec<String> = cat.tracks.iter().map(|t| t.track_id.clone()).collect();
    let config = ListenerConfig {
        n_users: args
            .users
            .unwrap_or(if args.preset == "tiny" { 150 } else { 600 }),
        seed: args.seed,
        ..Default::default()
    };
    let setup = Setup::new(cat, config);
    let data = setup.train_set(&setup.all_users());
    println!(
        "{} tracks ({}, {}-d), {} listeners, {} training sequences, {} validation targets",
        table.len(),
        table.name,
        table.dim,
        setup.listeners.len(),
        data.sequences.len(),
        data.valid.len()
    );

    let t = Instant::now();
    let shallow = Shallow::train(&table, &data, &ShallowConfig::default())
        .context("training the shallow net")?;
    let best = |c: &[crate::methods::CurvePoint]| {
        c.iter()
            .map(|p| p.valid_ndcg10)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    println!(
        "shallow: {} epochs, best validation NDCG@10 {:.4}, {:.0} s",
        shallow.curve.len().saturating_sub(1),
        best(&shallow.curve),
        t.elapsed().as_secs_f64()
    );
    save_for_serving(&args.out, Checkpoint::Shallow(&shallow), &table, &track_ids)?;

    let t = Instant::now();
    let bert = Bert4Rec::train(
        &table,
        &data,
        Bert4RecConfig {
            max_seconds: Some(args.bert_seconds),
            seed: args.seed,
            ..Default::default()
        },
    )
    .context("training BERT4Rec")?;
    println!(
        "bert4rec: {} epochs, best validation NDCG@10 {:.4} (stopped by {}), {:.0} s",
        bert.curve.len().saturating_sub(1),
        best(&bert.curve),
        bert.stopped,
        t.elapsed().as_secs_f64()
    );
    save_for_serving(&args.out, Checkpoint::Bert4Rec(&bert), &table, &track_ids)?;
    save_for_serving(
        &args.out,
        Checkpoint::Bert4RecPop(&bert),
        &table,
        &track_ids,
    )?;
    println!(
        "checkpoints written to {} in {:.0} s: serve them with `cadenza up --models {0}` \
         (strategies shallow, bert4rec, bert4rec_pop)",
        args.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
