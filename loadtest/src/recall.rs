//! `cadenza-load recall`: what a narrower HNSW beam (`--search-ef`) costs in results. Queries
//! like `Recommend`'s (the mean of a synthetic listener's history, heard tracks excluded by
//! the same `has_id` filter) against a catalogue built by `catalogue`, answered by the
//! qdrant-edge index at each beam width and by brute force over every vector (the exact
//! answer): recall@k and the time per search.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use cadenza_index::{Condition, EdgeIndex, Filter, PointId, SearchRequest, VectorIndex};
use cadenza_svc::catalog::{TRACKS, payload_track_id, point_id};
use clap::Args;

#[derive(Debug, Args)]
pub struct RecallArgs {
    /// A `cadenza up` data directory with a catalogue in it (`catalogue --data-dir`).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Its size and clusters (`catalogue --tracks --clusters`): the histories pick from them.
    #[arg(long, default_value_t = 100_000)]
    pub tracks: usize,
    #[arg(long, default_value_t = 512)]
    pub clusters: usize,
    /// Beam widths to compare (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "16,32,48,64,100")]
    pub ef: Vec<usize>,
    /// Queries (synthetic listeners), each a history of `--history` listens.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    #[arg(long, default_value_t = 20)]
    pub history: usize,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Write the figures as one JSON line to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: RecallArgs) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(measure(args))
}

async fn measure(args: RecallArgs) -> anyhow::Result<()> {
    let index = EdgeIndex::open(args.data_dir.join("index"))
        .await
        .with_context(|| format!("opening the index in {}", args.data_dir.display()))?;
    // Every vector, for the exact answers (stored normalised: cosine is the dot product).
    let mut all: Vec<(PointId, Vec<f32>)> = Vec::with_capacity(args.tracks);
    let mut by_track = std::collections::HashMap::new();
    let mut offset = None;
    loop {
        let (page, next) = index.scroll(TRACKS, offset, 5_000).await?;
        for p in page {
            if let Some(t) = payload_track_id(&p.payload) {
                by_track.insert(t.to_owned(), all.len());
            }
            all.push((p.id, p.vector));
        }
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    anyhow::ensure!(!all.is_empty(), "no tracks in {}", args.data_dir.display());
    let dim = all[0].1.len();
    let mut queries = Vec::with_capacity(args.queries);
    for u in 0..args.queries {
        let history = crate::grpc::history(u, args.history, args.tracks, args.clusters, 99);
        let mut q = vec![0f32; dim];
        let mut heard = Vec::new();
        for (_, t) in &history {
            if let Some(&i) = by_track.get(t) {
                for (a, b) in q.iter_mut().zip(&all[i].1) {
                    *a += b;
                }
                heard.push(point_id(t));
            }
        }
        let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 1e-6 {
            q.iter_mut().for_each(|x| *x /= norm);
            queries.push((q, heard));
        }
    }
    let t = Instant::now();
    let exact: Vec<HashSet<PointId>> = queries
        .iter()
        .map(|(q, heard)| {
            let mut scored: Vec<(f32, PointId)> = all
                .iter()
                .filter(|(id, _)| !heard.contains(id))
                .map(|(id, v)| (q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>(), *id))
                .collect();
            let k = args.k.min(scored.len());
            scored.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.0.total_cmp(&a.0));
            scored[..k].iter().map(|(_, id)| *id).collect()
        })
        .collect();
    let brute_us = t.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
    println!(
        "{} queries (histories of {}) over {} tracks; brute force {brute_us:.0} µs per query",
        queries.len(),
        args.history,
        all.len()
    );
    println!("  {:>5} {:>10} {:>12}", "ef", "recall@k", "µs/search");
    let mut rows = Vec::new();
    for &ef in &args.ef {
        let mut hits = 0usize;
        let mut total = 0usize;
        let t = Instant::now();
        for ((q, heard), want) in queries.iter().zip(&exact) {
            let req = SearchRequest::new(q.clone(), args.k)
                .filter(Filter::must_not(Condition::HasId(heard.clone())))
                .ef(Some(ef));
            let got = index.search(TRACKS, &req).await?;
            hits += got.iter().filter(|h| want.contains(&h.id)).count();
            total += want.len();
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
        let recall = hits as f64 / total.max(1) as f64;
        println!("  {ef:>5} {recall:>10.4} {us:>12.0}");
        rows.push(serde_json::json!({"ef": ef, "recall": recall, "us_per_search": us}));
    }
    if let Some(path) = &args.json {
        use std::io::Write as _;
        let line = serde_json::json!({
            "kind": "recall", "tracks": all.len(), "queries": queries.len(), "k": args.k,
            "brute_force_us": brute_us, "rows": rows,
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}
