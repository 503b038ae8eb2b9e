//! The report's answers: sentences computed from the tables below them, so the conclusions
//! are as current as the numbers (nothing here is written by hand). "Clearly" means the 95%
//! intervals do not overlap; otherwise the report says the difference is within noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::evaluate::MethodResult;
use crate::metrics::MeanCi;
use crate::report::Results;
use crate::rq::fold_means;

/// Embedding tables that are floors or baselines, not pretrained audio models.
const NOT_PRETRAINED: [&str; 3] = ["random", "mfcc", "-"];

fn cmp(a: &MeanCi, b: &MeanCi) -> &'static str {
    if a.lo > b.hi {
        "clearly above"
    } else if a.hi < b.lo {
        "clearly below"
    } else {
        "within the noise of"
    }
}

fn show(r: &MethodResult) -> String {
    format!("{} on {} ({:.3})", r.method, r.embedding, r.ndcg10.mean)
}

/// `## Answers`: one paragraph of findings per research question present in `res`.
pub fn answers(res: &Results) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "## Answers (computed from the tables below)\n");
    if let Some(rq1) = &res.rq1 {
        rq1_answers(&mut w, &rq1.novel);
    }
    if let Some(rows) = &res.rq2 {
        let held = fold_means(rows, |r| r.held_out_ndcg10);
        let gap = fold_means(rows, |r| r.in_sample_ndcg10 - r.held_out_ndcg10);
        let mut by_method: BTreeMap<&str, Vec<(f64, f64, f64, f64)>> = BTreeMap::new();
        for ((emb, method), pts) in &held {
            if NOT_PRETRAINED.contains(&emb.as_str()) || pts.len() < 2 {
                continue;
            }
            let g = &gap[&(emb.clone(), method.clone())];
            let (first, last) = (pts[0], pts[pts.len() - 1]);
            by_method
                .entry(method)
                .or_default()
                .push((first.1, last.1, g[0].1, g[g.len() - 1].1));
        }
        let mut s = Vec::new();
        for (m, v) in by_method {
            let n = v.len() as f64;
            let mean = |f: fn(&(f64, f64, f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / n;
            s.push(format!(
                "{m}: held-out NDCG@10 {:.3} with the smallest fraction of users vs {:.3} with all \
                 (train − held-out gap {:+.3} vs {:+.3})",
                mean(|x| x.0),
                mean(|x| x.1),
                mean(|x| x.2),
                mean(|x| x.3)
            ));
        }
        if !s.is_empty() {
            let _ = writeln!(
                w,
                "- **RQ2 (over-fitting as data shrinks)**, means over the pretrained embeddings: {}. \
                 A positive gap is over-fitting; a held-out score that falls with the fraction is \
                 what less data costs.",
                s.join("; ")
            );
        }
    }
    if let Some(rows) = &res.rq3 {
        let s: Vec<String> = rows
            .iter()
            .filter(|r| r.fraction < 1.0)
            .map(|r| {
                format!(
                    "{} at {:.0}%: τ-b {:.2} (best {})",
                    r.method,
                    r.fraction * 100.0,
                    r.kendall_tau,
                    r.order.first().map_or("-", String::as_str)
                )
            })
            .collect();
        if !s.is_empty() {
            let _ = writeln!(
                w,
                "- **RQ3 (does the ranking of embeddings change with size?)** Agreement with the \
                 ranking on all users: {}. τ near 1 means a small pilot would have picked the same \
                 embedding; near 0 or negative, it would not.",
                s.join("; ")
            );
        }
    }
    if let Some(rows) = &res.rq4 {
        let mut best: BTreeMap<&str, (&str, f64, f64)> = BTreeMap::new();
        let mut random: BTreeMap<&str, f64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.fraction >= 1.0) {
            if r.embedding == "random" {
                random.insert(&r.attribute, r.accuracy);
            } else if !NOT_PRETRAINED.contains(&r.embedding.as_str())
                && best
                    .get(r.attribute.as_str())
                    .is_none_or(|b| r.accuracy > b.1)
            {
                best.insert(&r.attribute, (&r.embedding, r.accuracy, r.majority));
            }
        }
        let (kept, lost): (Vec<_>, Vec<_>) = best
            .iter()
            .partition(|(_, (_, acc, maj))| *acc > *maj + 0.1);
        let fmt = |v: &[(&&str, &(&str, f64, f64))]| -> String {
            v.iter()
                .map(|(a, (e, acc, maj))| {
                    format!(
                        "{a} ({e} {acc:.2} vs majority {maj:.2}, random vectors {:.2})",
                        random.get(**a).copied().unwrap_or(f64::NAN)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            w,
            "- **RQ4 (which attributes survive?)** Linearly recoverable from the pretrained \
             embeddings (accuracy > majority + 0.10, all tracks): {}. Not recoverable: {}.",
            if kept.is_empty() {
                "none".into()
            } else {
                fmt(&kept)
            },
            if lost.is_empty() {
                "none".into()
            } else {
                fmt(&lost)
            }
        );
    }
    let _ = writeln!(w);
    w
}

fn rq1_answers(w: &mut String, rows: &[MethodResult]) {
    let get = |m: &str, e: &str| rows.iter().find(|r| r.method == m && r.embedding == e);
    let Some(random) = get("random", "-") else {
        return;
    };
    let best = |pred: &dyn Fn(&MethodResult) -> bool| {
        rows.iter()
            .filter(|r| pred(r))
            .max_by(|a, b| a.ndcg10.mean.total_cmp(&b.ndcg10.mean))
    };
    let Some(top) = best(&|r| r.embedding != "-") else {
        return;
    };
    let pretrained = |r: &MethodResult| !NOT_PRETRAINED.contains(&r.embedding.as_str());
    let mut s = vec![format!(
        "the best method on audio is {}, {} random ranking ({:.3}) by NDCG@10",
        show(top),
        cmp(&top.ndcg10, &random.ndcg10),
        random.ndcg10.mean
    )];
    for other in ["popularity", "bert4rec_id"] {
        if let Some(o) = get(other, "-") {
            s.push(format!(
                "it is {} {other} ({:.3})",
                cmp(&top.ndcg10, &o.ndcg10),
                o.ndcg10.mean
            ));
        }
    }
    let methods: Vec<&str> = {
        let mut m: Vec<&str> = rows
            .iter()
            .filter(|r| pretrained(r))
            .map(|r| r.method.as_str())
            .collect();
        m.dedup();
        let mut seen = std::collections::HashSet::new();
        m.retain(|x| seen.insert(*x));
        m
    };
    for m in methods {
        let Some(b) = best(&|r| r.method == m && pretrained(r)) else {
            continue;
        };
        let mut parts = vec![format!(
            "best pretrained table {} ({:.3})",
            b.embedding, b.ndcg10.mean
        )];
        for floor in ["random", "mfcc"] {
            if let Some(f) = get(m, floor) {
                parts.push(format!(
                    "{} {floor} vectors ({:.3})",
                    cmp(&b.ndcg10, &f.ndcg10),
                    f.ndcg10.mean
                ));
            }
        }
        s.push(format!("{m}: {}", parts.join(", ")));
    }
    let _ = writeln!(
        w,
        "- **RQ1 (pretrained embeddings on a small archive)**: {}.",
        s.join("; ")
    );
}
