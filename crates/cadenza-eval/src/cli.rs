//! `cadenza eval`: arguments and the run that writes a dated report folder. The `cadenza`
//! binary only parses and delegates here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::catalogue::Catalogue;
use crate::embeddings::{embed_catalogue, random_table};
use crate::experiment::{Budget, Method, Setup};
use crate::items::ItemTable;
use crate::listeners::ListenerConfig;
use crate::methods::{Bert4RecConfig, ShallowConfig};
use crate::report::{Results, today, write};
use crate::rq;

/// Run the RQ1–RQ4 experiments on a corpus and write a report.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Corpus preset: reads `data/corpus/<preset>/catalogue.jsonl`.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Catalogue file to use instead of the preset's.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// Parent folder of the report; it goes to `<out>/<date>-<preset>/`.
    #[arg(long, default_value = "data/eval")]
    pub out: PathBuf,
    /// Item tables to compare: model names (`MTT_musicnn`, …), `mfcc`, `random`
    /// [default: every model found, then mfcc and random].
    #[arg(long, value_delimiter = ',')]
    pub embeddings: Vec<String>,
    /// Experiments to run: rq1, rq2, rq3 (needs rq2), rq4, or all.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub experiments: Vec<String>,
    /// Methods cross-validated in RQ2 [default: knn,shallow,bert4rec for tiny; knn,shallow
    /// otherwise, since 5 folds × 4 fractions × every table of BERT4Rec trainings would not fit
    /// the 30-minute budget on 2 cores].
    #[arg(long, value_delimiter = ',')]
    pub rq2_methods: Vec<Method>,
    /// Synthetic listeners [default: 150 for tiny, 600 otherwise].
    #[arg(long)]
    pub users: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wall-clock cap in seconds on each BERT4Rec training in RQ1 [default: 60 tiny, 240 otherwise].
    #[arg(long)]
    pub bert_seconds: Option<f64>,
    /// Cap on each BERT4Rec training inside RQ2's cross-validation [default: a fifth of RQ1's].
    #[arg(long)]
    pub cv_bert_seconds: Option<f64>,
    /// Embedding cache (vectors keyed by model and file hash).
    #[arg(long, env = "CADENZA_CACHE")]
    pub cache: Option<PathBuf>,
    /// Also write RQ1's checkpoints to `<report>/checkpoints/`.
    #[arg(long)]
    pub checkpoints: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

fn tables(
    args: &EvalArgs,
    cat: &Catalogue,
    cache: &std::path::Path,
) -> anyhow::Result<Vec<ItemTable>> {
    let names: Vec<String> = if args.embeddings.is_empty() {
        let mut m = cadenza_model::locate::known_models();
        m.sort_by_key(|n| (n != cadenza_model::DEFAULT_MODEL, n.clone()));
        m.extend(["mfcc".to_owned(), "random".to_owned()]);
        m
    } else {
        args.embeddings.clone()
    };
    names
        .iter()
        .map(|n| match n.as_str() {
            "random" => Ok(random_table(cat.len(), 200, args.seed)),
            "mfcc" => Ok(embed_catalogue(cat, "mfcc", cache, !args.quiet)?.standardized()),
            m => embed_catalogue(cat, m, cache, !args.quiet)
                .with_context(|| format!("embedding the catalogue with {m}")),
        })
        .collect()
}

/// Run `cadenza eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
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
    let tiny = args.preset == "tiny";
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("embeddings");
    let mut res = Results {
        // The program by name, not by where it was built: the report is meant to be committed.
        command: std::env::args()
            .enumerate()
            .map(|(i, a)| match i {
                0 => std::path::Path::new(&a)
                    .file_name()
                    .map_or(a.clone(), |n| n.to_string_lossy().into_owned()),
                _ => a,
            })
            .collect::<Vec<_>>()
            .join(" "),
        date: today(),
        catalogue: path.display().to_string(),
        n_tracks: cat.len(),
        ..Default::default()
    };
    let tables = tables(&args, &cat, &cache)?;
    anyhow::ensure!(!tables.is_empty(), "no item tables to compare");
    res.embeddings = tables.iter().map(|t| (t.name.clone(), t.dim)).collect();
    res.seconds
        .insert("embedding".into(), t0.elapsed().as_secs_f64());
    let config = ListenerConfig {
        n_users: args.users.unwrap_or(if tiny { 150 } else { 600 }),
        seed: args.seed,
        ..Default::default()
    };
    let setup = Setup::new(cat, config);
    res.n_users = setup.splits.len();
    let mut arch: BTreeMap<String, usize> = BTreeMap::new();
    setup
        .listeners
        .iter()
        .for_each(|l| *arch.entry(l.dominant().name().to_owned()).or_default() += 1);
    res.archetypes = arch;
    let bert_s = args.bert_seconds.unwrap_or(if tiny { 60.0 } else { 240.0 });
    let budget = Budget {
        shallow: ShallowConfig::default(),
        // Patience 5: validation NDCG@10 over a few hundred users moves ±0.005 from epoch to
        // epoch, and 5 epochs without a new best is a plateau at that noise; the wall-clock cap
        // is a backstop, and the report says which of the two stopped each model.
        bert4rec: Bert4RecConfig {
            max_seconds: Some(bert_s),
            patience: 5,
            seed: args.seed,
            ..Default::default()
        },
        id_dim: 64,
    };
    let cv_budget = Budget {
        bert4rec: Bert4RecConfig {
            max_seconds: Some(args.cv_bert_seconds.unwrap_or(bert_s / 5.0)),
            ..budget.bert4rec.clone()
        },
        shallow: ShallowConfig {
            max_epochs: 15,
            ..budget.shallow.clone()
        },
        ..budget.clone()
    };
    let want = |e: &str| args.experiments.iter().any(|x| x == e || x == "all");
    let dir = args.out.join(format!("{}-{}", res.date, args.preset));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let progress = !args.quiet;
    if want("rq1") {
        let t = Instant::now();
        let ck = args.checkpoints.then(|| dir.join("checkpoints"));
        res.rq1 = Some(rq::rq1(&setup, &tables, &budget, ck.as_deref(), progress)?);
        res.seconds.insert("rq1".into(), t.elapsed().as_secs_f64());
    }
    if want("rq2") || want("rq3") {
        let t = Instant::now();
        let methods = match (&args.rq2_methods[..], tiny) {
            ([], true) => vec![Method::Knn, Method::Shallow, Method::Bert4rec],
            ([], false) => vec![Method::Knn, Method::Shallow],
            (m, _) => m.to_vec(),
        };
        let rows = rq::rq2(
            &setup, &tables, &methods, 5, &cv_budget, args.seed, progress,
        )?;
        res.rq3 = Some(rq::rq3(&rows));
        res.rq2 = Some(rows);
        res.seconds
            .insert("rq2+rq3".into(), t.elapsed().as_secs_f64());
    }
    if want("rq4") {
        let t = Instant::now();
        res.rq4 = Some(rq::rq4(&setup, &tables, args.seed, progress));
        res.seconds.insert("rq4".into(), t.elapsed().as_secs_f64());
    }
    res.seconds
        .insert("total".into(), t0.elapsed().as_secs_f64());
    write(&dir, &res)?;
    println!("report written to {}", dir.join("report.md").display());
    Ok(ExitCode::SUCCESS)
}
