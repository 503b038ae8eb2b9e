//! The dated report folder: `report.md`, `figures/*.png` with each figure's data as JSON, and
//! `results.json` with every number.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::evaluate::MethodResult;
use crate::plots::{Bars, Series, bar_chart, line_chart, write_json};
use crate::probes::ProbeResult;
use crate::rq::{FRACTIONS, Rq1, Rq2Row, Rq3Row, fold_means};

/// Everything one `cadenza eval` run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    pub command: String,
    pub date: String,
    pub catalogue: String,
    pub n_tracks: usize,
    pub n_users: usize,
    pub archetypes: BTreeMap<String, usize>,
    pub embeddings: Vec<(String, usize)>,
    pub rq1: Option<Rq1>,
    pub rq2: Option<Vec<Rq2Row>>,
    pub rq3: Option<Vec<Rq3Row>>,
    pub rq4: Option<Vec<ProbeResult>>,
    pub seconds: BTreeMap<String, f64>,
}

/// Today's date (UTC) as `YYYY-MM-DD`, without a calendar dependency.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn metric_row(r: &MethodResult) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.2} | {:.3} | {:.3} | {:.4} |\n",
        r.method,
        r.embedding,
        r.hr10.show(),
        r.ndcg10.show(),
        r.mrr10.show(),
        r.hr50.show(),
        r.ndcg50.show(),
        r.diversity10,
        r.novelty10,
        r.coverage10,
        r.long_tail10,
        r.serendipity10
    )
}

const METRIC_HEADER: &str = "| method | embedding | HR@10 | NDCG@10 | MRR@10 | HR@50 | NDCG@50 | ILD@10 | novelty@10 | coverage@10 | long tail@10 | serendipity@10 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";

/// Write `report.md`, figures and `results.json` into `dir`.
pub fn write(dir: &Path, res: &Results) -> Result<()> {
    let fig = dir.join("figures");
    std::fs::create_dir_all(&fig).map_err(|e| EvalError::io(&fig, e))?;
    write_json(&dir.join("results.json"), res)?;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# cadenza evaluation — {}\n", res.date);
    let _ = writeln!(w, "Made by `{}`.\n", res.command);
    let _ = writeln!(
        w,
        "Catalogue `{}`: {} tracks. {} synthetic listeners (archetypes defined on metadata only; counts by dominant archetype: {}). Item tables: {}.\n",
        res.catalogue,
        res.n_tracks,
        res.n_users,
        res.archetypes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        res.embeddings
            .iter()
            .map(|(k, d)| format!("{k} ({d}-d)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "Protocol: per-user temporal leave-last-out, targets are first listens and seen items are excluded (repeat-aware table: targets are last plays, nothing excluded); full ranking over the catalogue; means over users with 95% normal-approximation intervals (±). ILD is measured in the first table's space for every method.\n"
    );
    w.push_str(&crate::findings::answers(res));
    if let Some(rq1) = &res.rq1 {
        write_rq1(w, &fig, rq1)?;
    }
    if let Some(rows) = &res.rq2 {
        write_rq2(w, &fig, rows)?;
    }
    if let Some(rows) = &res.rq3 {
        let _ = writeln!(
            w,
            "## RQ3 — does the ranking of embeddings change with dataset size?\n"
        );
        let _ = writeln!(
            w,
            "Held-out NDCG@10 ranking of embeddings at each fraction, compared with the ranking at 100% (Kendall τ-b, Spearman ρ; NaN when fewer than two embeddings or all tied).\n"
        );
        let _ = writeln!(
            w,
            "| method | fraction | order (best first) | τ-b | ρ |\n|---|---|---|---|---|"
        );
        for r in rows {
            let _ = writeln!(
                w,
                "| {} | {:.0}% | {} | {:.2} | {:.2} |",
                r.method,
                r.fraction * 100.0,
                r.order.join(" > "),
                r.kendall_tau,
                r.spearman_rho
            );
        }
        let _ = writeln!(w);
        write_json(&fig.join("rq3_rank_correlation.json"), rows)?;
    }
    if let Some(rows) = &res.rq4 {
        write_rq4(w, &fig, rows)?;
    }
    let _ = writeln!(w, "## Timings\n");
    for (k, v) in &res.seconds {
        let _ = writeln!(w, "- {k}: {v:.0} s");
    }
    let p = dir.join("report.md");
    std::fs::write(&p, md).map_err(|e| EvalError::io(&p, e))
}

fn write_rq1(w: &mut String, fig: &Path, rq1: &Rq1) -> Result<()> {
    let _ = writeln!(w, "## RQ1 — methods × embeddings\n");
    let _ = writeln!(
        w,
        "{} test users. `-` marks methods that do not use the item table.\n",
        rq1.n_users
    );
    w.push_str(METRIC_HEADER);
    rq1.novel.iter().for_each(|r| w.push_str(&metric_row(r)));
    let _ = writeln!(w, "\n![NDCG@10](figures/rq1_ndcg10.png)\n");
    let _ = writeln!(
        w,
        "### Repeat-aware (re-listens are targets; personalised-popularity fusion matters here)\n"
    );
    w.push_str(METRIC_HEADER);
    rq1.repeat_aware
        .iter()
        .for_each(|r| w.push_str(&metric_row(r)));
    let _ = writeln!(w, "\n### MMR re-ranking (λ = 0.7) of KNN\n");
    w.push_str(METRIC_HEADER);
    rq1.mmr.iter().for_each(|r| w.push_str(&metric_row(r)));
    // Per archetype, NDCG@10.
    let groups: Vec<String> = rq1
        .novel
        .first()
        .map(|r| r.by_group.keys().cloned().collect())
        .unwrap_or_default();
    let _ = writeln!(w, "\n### NDCG@10 by dominant archetype\n");
    let _ = writeln!(
        w,
        "| method | embedding | {} |\n|---|---|{}",
        groups.join(" | "),
        "---|".repeat(groups.len())
    );
    for r in &rq1.novel {
        let cells: Vec<String> = groups
            .iter()
            .map(|g| {
                r.by_group
                    .get(g)
                    .map_or("-".into(), |m| format!("{:.3} (n={})", m.mean, m.n))
            })
            .collect();
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            r.method,
            r.embedding,
            cells.join(" | ")
        );
    }
    let _ = writeln!(w, "\n### Training\n");
    for (k, s) in &rq1.stopped {
        let c = &rq1.curves[k];
        let best = c.iter().map(|p| p.valid_ndcg10).fold(f64::MIN, f64::max);
        let _ = writeln!(
            w,
            "- {k}: {} epochs, stopped by {s}, best validation NDCG@10 {best:.3}",
            c.len() - 1
        );
    }
    let _ = writeln!(w, "\n![learning curves](figures/learning_curves.png)\n");
    // Figures.
    let methods: Vec<String> = {
        let mut m: Vec<String> = rq1.novel.iter().map(|r| r.method.clone()).collect();
        m.dedup();
        let mut seen = std::collections::HashSet::new();
        m.retain(|x| seen.insert(x.clone()));
        m
    };
    let embs: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        rq1.novel
            .iter()
            .map(|r| r.embedding.clone())
            .filter(|e| seen.insert(e.clone()))
            .collect()
    };
    let bars = Bars {
        groups: methods.clone(),
        series: embs
            .iter()
            .map(|e| {
                let v = methods
                    .iter()
                    .map(|m| {
                        rq1.novel
                            .iter()
                            .find(|r| &r.method == m && &r.embedding == e)
                            .map_or((0.0, 0.0, 0.0), |r| {
                                (r.ndcg10.mean, r.ndcg10.lo, r.ndcg10.hi)
                            })
                    })
                    .collect();
                (e.clone(), v)
            })
            .collect(),
    };
    bar_chart(
        &fig.join("rq1_ndcg10.png"),
        "RQ1: NDCG@10 by method and item table (95% CI)",
        "NDCG@10",
        &bars,
    )?;
    write_json(&fig.join("rq1_ndcg10.json"), &bars)?;
    let series: Vec<Series> = rq1
        .curves
        .iter()
        .filter(|(k, _)| k.contains("bert4rec"))
        .map(|(k, c)| Series {
            name: k.clone(),
            points: c.iter().map(|p| (p.epoch as f64, p.valid_ndcg10)).collect(),
        })
        .collect();
    line_chart(
        &fig.join("learning_curves.png"),
        "BERT4Rec: validation NDCG@10 per epoch",
        "epoch",
        "validation NDCG@10",
        &series,
    )?;
    write_json(&fig.join("learning_curves.json"), &rq1.curves)?;
    Ok(())
}

fn write_rq2(w: &mut String, fig: &Path, rows: &[Rq2Row]) -> Result<()> {
    let held = fold_means(rows, |r| r.held_out_ndcg10);
    let ins = fold_means(rows, |r| r.in_sample_ndcg10);
    let _ = writeln!(
        w,
        "## RQ2 — over-fitting vs generalisation as data shrinks\n"
    );
    let _ = writeln!(
        w,
        "5-fold cross-validation over users at each fraction of the users. Held-out = NDCG@10 on held-out users' targets; in-sample = NDCG@10 predicting training users' last training item (seen in training); gap = in-sample − held-out. Means over folds.\n"
    );
    let frs: Vec<String> = FRACTIONS
        .iter()
        .map(|f| format!("{:.0}%", f * 100.0))
        .collect();
    let _ = writeln!(
        w,
        "| embedding | method | {} |\n|---|---|{}",
        frs.iter()
            .map(|f| format!("{f} held-out / gap"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(frs.len())
    );
    for ((e, m), pts) in &held {
        let gaps = &ins[&(e.clone(), m.clone())];
        let cells: Vec<String> = pts
            .iter()
            .zip(gaps)
            .map(|(h, i)| format!("{:.3} / {:+.3}", h.1, i.1 - h.1))
            .collect();
        let _ = writeln!(w, "| {e} | {m} | {} |", cells.join(" | "));
    }
    let series: Vec<Series> = held
        .iter()
        .map(|((e, m), p)| Series {
            name: format!("{e}/{m}"),
            points: p.clone(),
        })
        .collect();
    line_chart(
        &fig.join("rq2_held_out.png"),
        "RQ2: held-out NDCG@10 vs share of users",
        "fraction of users",
        "NDCG@10",
        &series,
    )?;
    write_json(&fig.join("rq2_held_out.json"), &series)?;
    let gaps: Vec<Series> = held
        .iter()
        .map(|(k, p)| Series {
            name: format!("{}/{}", k.0, k.1),
            points: p
                .iter()
                .zip(&ins[k])
                .map(|(h, i)| (h.0, i.1 - h.1))
                .collect(),
        })
        .collect();
    line_chart(
        &fig.join("rq2_gap.png"),
        "RQ2: in-sample − held-out NDCG@10",
        "fraction of users",
        "gap",
        &gaps,
    )?;
    write_json(&fig.join("rq2_gap.json"), &gaps)?;
    write_json(&fig.join("rq2_folds.json"), &rows)?;
    let _ = writeln!(
        w,
        "\n![held-out](figures/rq2_held_out.png)\n\n![gap](figures/rq2_gap.png)\n"
    );
    Ok(())
}

fn write_rq4(w: &mut String, fig: &Path, rows: &[ProbeResult]) -> Result<()> {
    let _ = writeln!(w, "## RQ4 — which attributes stay linearly recoverable?\n");
    let _ = writeln!(
        w,
        "Ridge classifier (one-vs-rest, α = 10, standardised features), work-level 5-fold CV, trained on a fraction of each training fold. Accuracy (majority-class baseline in brackets).\n"
    );
    let frs: Vec<String> = FRACTIONS
        .iter()
        .map(|f| format!("{:.0}%", f * 100.0))
        .collect();
    let _ = writeln!(
        w,
        "| attribute | embedding | classes | {} |\n|---|---|---|{}",
        frs.join(" | "),
        "---|".repeat(frs.len())
    );
    let mut keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.attribute.clone(), r.embedding.clone()))
        .collect();
    keys.dedup();
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    keys.sort();
    for (a, e) in &keys {
        let mut pts: Vec<&ProbeResult> = rows
            .iter()
            .filter(|r| &r.attribute == a && &r.embedding == e)
            .collect();
        pts.sort_by(|x, y| x.fraction.total_cmp(&y.fraction));
        let cells: Vec<String> = pts
            .iter()
            .map(|r| format!("{:.2} ({:.2})", r.accuracy, r.majority))
            .collect();
        let _ = writeln!(
            w,
            "| {a} | {e} | {} | {} |",
            pts.first().map_or(0, |r| r.n_classes),
            cells.join(" | ")
        );
    }
    let series: Vec<Series> = keys
        .iter()
        .map(|(a, e)| Series {
            name: format!("{a}/{e}"),
            points: {
                let mut p: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| &r.attribute == a && &r.embedding == e)
                    .map(|r| (r.fraction, r.accuracy - r.majority))
                    .collect();
                p.sort_by(|x, y| x.0.total_cmp(&y.0));
                p
            },
        })
        .collect();
    line_chart(
        &fig.join("rq4_probes.png"),
        "RQ4: probe accuracy above majority vs share of training tracks",
        "fraction of training tracks",
        "accuracy − majority",
        &series,
    )?;
    write_json(&fig.join("rq4_probes.json"), &rows)?;
    let _ = writeln!(w, "\n![probes](figures/rq4_probes.png)\n");
    Ok(())
}
