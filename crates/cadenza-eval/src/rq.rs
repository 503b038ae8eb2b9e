//! The four experiments. Each returns plain serialisable results; [`crate::report`] turns them
//! into tables and figures.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::evaluate::{EvalContext, MethodResult, TestCase, evaluate};
use crate::experiment::{Budget, Method, Setup, train_methods};
use crate::items::ItemTable;
use crate::methods::{Checkpoint, CurvePoint, Knn, save_ranker};
use crate::probes::{ATTRIBUTES, ProbeResult, probe};
use crate::split::{folds, subsample};

/// RQ1: every method on every item table, on first-listen targets, on repeat-aware targets,
/// and KNN with MMR re-ranking.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rq1 {
    pub novel: Vec<MethodResult>,
    pub repeat_aware: Vec<MethodResult>,
    pub mmr: Vec<MethodResult>,
    /// Learning curves by `embedding/method`.
    pub curves: BTreeMap<String, Vec<CurvePoint>>,
    pub stopped: BTreeMap<String, String>,
    pub diversity_space: String,
    pub n_users: usize,
}

pub const RQ1_METHODS: [Method; 5] = [
    Method::Knn,
    Method::Multicentroid,
    Method::Shallow,
    Method::Bert4rec,
    Method::Bert4recPop,
];
pub const BASELINES: [Method; 3] = [Method::Random, Method::Popularity, Method::Bert4recId];

pub fn rq1(
    setup: &Setup,
    tables: &[ItemTable],
    budget: &Budget,
    checkpoints: Option<&Path>,
    progress: bool,
) -> Result<Rq1> {
    let users = setup.all_users();
    let data = setup.train_set(&users);
    let cases = setup.cases(&users);
    let space = tables[0].normalized();
    let ctx = EvalContext {
        popularity: setup.popularity(&users),
        diversity_space: space.clone(),
        exclude_seen: true,
        mmr_lambda: None,
    };
    let rctx = EvalContext {
        exclude_seen: false,
        ..ctx.clone()
    };
    let mctx = EvalContext {
        mmr_lambda: Some(0.7),
        ..ctx.clone()
    };
    let mut out = Rq1 {
        diversity_space: tables[0].name.clone(),
        n_users: cases.len(),
        ..Default::default()
    };
    let bar = crate::progress::bar(tables.len() as u64 + 1, "RQ1", progress);
    let mut jobs: Vec<(&ItemTable, Vec<Method>)> = vec![(&tables[0], BASELINES.to_vec())];
    jobs.extend(tables.iter().map(|t| (t, RQ1_METHODS.to_vec())));
    for (table, methods) in jobs {
        let trained = train_methods(table, &data, &methods, budget)?;
        let label = |m: &str| {
            if matches!(m, "random" | "popularity" | "bert4rec_id") {
                "-".to_owned()
            } else {
                table.name.clone()
            }
        };
        for (k, c) in trained.curves {
            out.curves.insert(format!("{}/{k}", label(&k)), c);
        }
        for (k, s) in trained.stopped {
            out.stopped.insert(format!("{}/{k}", label(&k)), s);
        }
        for r in &trained.rankers {
            let emb = label(r.name());
            out.novel.push(evaluate(r.as_ref(), &emb, &cases, &ctx));
            if matches!(
                r.name(),
                "knn" | "bert4rec" | "bert4rec_pop" | "popularity" | "random"
            ) {
                out.repeat_aware
                    .push(evaluate(r.as_ref(), &emb, &setup.repeat_cases, &rctx));
            }
        }
        if methods.contains(&Method::Knn) {
            let mut m = evaluate(&Knn::new(table), &table.name, &cases, &mctx);
            m.method = "knn+mmr(0.7)".into();
            out.mmr.push(m);
        }
        if let Some(dir) = checkpoints.filter(|_| methods.contains(&Method::Knn)) {
            let dir = dir.join(&table.name);
            save_ranker(&dir, Checkpoint::Knn, table)?;
            save_ranker(&dir, Checkpoint::MultiCentroid { k: 3 }, table)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// RQ2: one row per (embedding, method, fraction, fold).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rq2Row {
    pub embedding: String,
    pub method: String,
    pub fraction: f64,
    pub fold: usize,
    pub n_train_users: usize,
    /// NDCG@10 predicting training users' last training item (seen in training).
    pub in_sample_ndcg10: f64,
    /// NDCG@10 on held-out users' test targets.
    pub held_out_ndcg10: f64,
}

pub const FRACTIONS: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

pub fn rq2(
    setup: &Setup,
    tables: &[ItemTable],
    methods: &[Method],
    k: usize,
    budget: &Budget,
    seed: u64,
    progress: bool,
) -> Result<Vec<Rq2Row>> {
    let mut rows = Vec::new();
    let bar = crate::progress::bar((tables.len() * FRACTIONS.len() * k) as u64, "RQ2", progress);
    for &fraction in &FRACTIONS {
        let users = subsample(&setup.all_users(), fraction, seed);
        let fold_of = folds(users.len(), k, seed);
        for fold in 0..k {
            let train: Vec<usize> = users
                .iter()
                .zip(&fold_of)
                .filter(|(_, f)| **f != fold)
                .map(|(u, _)| *u)
                .collect();
            let test: Vec<usize> = users
                .iter()
                .zip(&fold_of)
                .filter(|(_, f)| **f == fold)
                .map(|(u, _)| *u)
                .collect();
            if train.is_empty() || test.is_empty() {
                continue;
            }
            let data = setup.train_set(&train);
            let held_out = setup.cases(&test);
            let in_sample: Vec<TestCase> = train
                .iter()
                .filter_map(|&u| {
                    let t = &setup.splits[u].train;
                    let (last, input) = t.split_last()?;
                    (!input.is_empty() && !input.contains(last)).then(|| TestCase {
                        user_id: setup.splits[u].user_id.clone(),
                        input: input.to_vec(),
                        target: *last,
                        group: String::new(),
                    })
                })
                .collect();
            for table in tables {
                let ctx = EvalContext {
                    popularity: setup.popularity(&train),
                    diversity_space: table.normalized(),
                    exclude_seen: true,
                    mmr_lambda: None,
                };
                let trained = train_methods(table, &data, methods, budget)?;
                for r in &trained.rankers {
                    rows.push(Rq2Row {
                        embedding: table.name.clone(),
                        method: r.name().to_owned(),
                        fraction,
                        fold,
                        n_train_users: train.len(),
                        in_sample_ndcg10: evaluate(r.as_ref(), &table.name, &in_sample, &ctx)
                            .ndcg10
                            .mean,
                        held_out_ndcg10: evaluate(r.as_ref(), &table.name, &held_out, &ctx)
                            .ndcg10
                            .mean,
                    });
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Mean of a column over folds, per (embedding, method, fraction).
pub fn fold_means(
    rows: &[Rq2Row],
    f: impl Fn(&Rq2Row) -> f64,
) -> BTreeMap<(String, String), Vec<(f64, f64)>> {
    let mut acc: BTreeMap<(String, String, u64), (f64, usize)> = BTreeMap::new();
    for r in rows {
        let e = acc
            .entry((
                r.embedding.clone(),
                r.method.clone(),
                (r.fraction * 1000.0) as u64,
            ))
            .or_default();
        e.0 += f(r);
        e.1 += 1;
    }
    let mut out: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for ((e, m, fr), (s, n)) in acc {
        out.entry((e, m))
            .or_default()
            .push((fr as f64 / 1000.0, s / n as f64));
    }
    out
}

/// RQ3: per method, how the ranking of embeddings at each fraction agrees with the ranking at
/// 100% (Kendall τ-b and Spearman ρ over embeddings).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rq3Row {
    pub method: String,
    pub fraction: f64,
    /// Embeddings best first at this fraction.
    pub order: Vec<String>,
    pub kendall_tau: f64,
    pub spearman_rho: f64,
}

pub fn rq3(rows: &[Rq2Row]) -> Vec<Rq3Row> {
    let means = fold_means(rows, |r| r.held_out_ndcg10);
    let methods: Vec<String> = {
        let mut m: Vec<String> = means.keys().map(|k| k.1.clone()).collect();
        m.sort();
        m.dedup();
        m
    };
    let mut out = Vec::new();
    for m in methods {
        let embs: Vec<&String> = means.keys().filter(|k| k.1 == m).map(|k| &k.0).collect();
        let at = |fr: f64| -> Vec<f64> {
            embs.iter()
                .map(|e| {
                    means[&((*e).clone(), m.clone())]
                        .iter()
                        .find(|p| (p.0 - fr).abs() < 1e-9)
                        .map_or(f64::NAN, |p| p.1)
                })
                .collect()
        };
        let full = at(1.0);
        for &fr in &FRACTIONS {
            let v = at(fr);
            let mut order: Vec<(f64, String)> = v
                .iter()
                .zip(&embs)
                .map(|(s, e)| (*s, (*e).clone()))
                .collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0));
            out.push(Rq3Row {
                method: m.clone(),
                fraction: fr,
                order: order.into_iter().map(|x| x.1).collect(),
                kendall_tau: kendall_tau_b(&v, &full),
                spearman_rho: spearman(&v, &full),
            });
        }
    }
    out
}

/// Kendall's τ-b (ties in either ranking handled); NaN with fewer than two items.
pub fn kendall_tau_b(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    let (mut c, mut d, mut ta, mut tb) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        for j in i + 1..n {
            let x = (a[i] - a[j]).signum() * f64::from(u8::from(a[i] != a[j]));
            let y = (b[i] - b[j]).signum() * f64::from(u8::from(b[i] != b[j]));
            match (x == 0.0, y == 0.0) {
                (true, true) => {}
                (true, false) => ta += 1.0,
                (false, true) => tb += 1.0,
                (false, false) => {
                    if x * y > 0.0 {
                        c += 1.0
                    } else {
                        d += 1.0
                    }
                }
            }
        }
    }
    let den = ((c + d + ta) * (c + d + tb)).sqrt();
    if den == 0.0 { f64::NAN } else { (c - d) / den }
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's ρ: Pearson correlation of average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        f64::NAN
    } else {
        cov / (va * vb).sqrt()
    }
}

/// RQ4: linear probes of every attribute on every table at every fraction (work-level 5-fold).
pub fn rq4(setup: &Setup, tables: &[ItemTable], seed: u64, progress: bool) -> Vec<ProbeResult> {
    use rayon::prelude::*;
    let jobs: Vec<(&ItemTable, &str, f64)> = tables
        .iter()
        .flat_map(|t| {
            ATTRIBUTES
                .iter()
                .flat_map(move |a| FRACTIONS.iter().map(move |f| (t, *a, *f)))
        })
        .collect();
    let bar = crate::progress::bar(jobs.len() as u64, "RQ4", progress);
    let out = jobs
        .par_iter()
        .map(|(t, a, f)| {
            let r = probe(&setup.catalogue, t, a, *f, 5, seed);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_correlations_by_hand() {
        assert!((kendall_tau_b(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert!((kendall_tau_b(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // One discordant pair of three: (2 − 1) / 3.
        assert!((kendall_tau_b(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-12);
        // ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/24 = 0.5.
        assert!((spearman(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]) - 0.5).abs() < 1e-12);
    }
}
