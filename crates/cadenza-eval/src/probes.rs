//! Linear probes (RQ4): can a ridge classifier recover tempo band, lead instrument, ensemble,
//! era and dynamics from an embedding, trained on a fraction of the tracks, with work-level
//! folds so no work is on both sides?

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, Track};
use crate::items::ItemTable;
use crate::split::{subsample, work_folds};

/// The attributes probed, each a categorical label of a track.
pub const ATTRIBUTES: [&str; 5] = [
    "tempo_band",
    "lead_instrument",
    "ensemble",
    "era",
    "dynamics",
];

pub fn label(t: &Track, attribute: &str) -> String {
    match attribute {
        "tempo_band" => t.tempo_band().to_owned(),
        "lead_instrument" => t.lead_instrument.clone(),
        "ensemble" => t.ensemble.clone(),
        "era" => t.era.clone(),
        "dynamics" => t.dynamics_band().to_owned(),
        _ => String::new(),
    }
}

/// Solve `A x = b` for symmetric positive definite `A` (`n × n`, row-major) by Cholesky, for
/// several right-hand sides `B` (`n × m`). Returns `X` (`n × m`).
fn cholesky_solve(a: &mut [f64], n: usize, b: &[f64], m: usize) -> Vec<f64> {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        let d = s.max(1e-12).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    let mut x = b.to_vec();
    for c in 0..m {
        for i in 0..n {
            let mut s = x[i * m + c];
            for k in 0..i {
                s -= a[i * n + k] * x[k * m + c];
            }
            x[i * m + c] = s / a[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = x[i * m + c];
            for k in i + 1..n {
                s -= a[k * n + i] * x[k * m + c];
            }
            x[i * m + c] = s / a[i * n + i];
        }
    }
    x
}

/// A one-vs-rest ridge classifier on standardised features (with an unpenalised-ish bias
/// column): `W = (XᵀX + αI)⁻¹ XᵀY`, solved in the dual when there are fewer rows than features.
#[derive(Debug, Clone)]
pub struct Ridge {
    pub classes: Vec<String>,
    mean: Vec<f64>,
    sd: Vec<f64>,
    /// `(d + 1) × classes`.
    w: Vec<f64>,
}

impl Ridge {
    pub fn fit(x: &[Vec<f32>], y: &[String], alpha: f64) -> Ridge {
        let mut classes: Vec<String> = y.to_vec();
        classes.sort();
        classes.dedup();
        let n = x.len();
        let d = x.first().map_or(0, Vec::len);
        let mean: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| f64::from(r[j])).sum::<f64>() / n.max(1) as f64)
            .collect();
        let sd: Vec<f64> = (0..d)
            .map(|j| {
                (x.iter()
                    .map(|r| (f64::from(r[j]) - mean[j]).powi(2))
                    .sum::<f64>()
                    / n.max(1) as f64)
                    .sqrt()
                    .max(1e-8)
            })
            .collect();
        let p = d + 1;
        let mut xm = vec![0.0; n * p];
        for (i, r) in x.iter().enumerate() {
            for j in 0..d {
                xm[i * p + j] = (f64::from(r[j]) - mean[j]) / sd[j];
            }
            xm[i * p + d] = 1.0;
        }
        let m = classes.len();
        let yv: Vec<f64> = y
            .iter()
            .flat_map(|l| classes.iter().map(move |c| if c == l { 1.0 } else { -1.0 }))
            .collect();
        let w = if n < p {
            // Dual: W = Xᵀ (XXᵀ + αI)⁻¹ Y.
            let mut k = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    k[i * n + j] = (0..p).map(|t| xm[i * p + t] * xm[j * p + t]).sum::<f64>()
                        + if i == j { alpha } else { 0.0 };
                }
            }
            let a = cholesky_solve(&mut k, n, &yv, m);
            let mut w = vec![0.0; p * m];
            for t in 0..p {
                for c in 0..m {
                    w[t * m + c] = (0..n).map(|i| xm[i * p + t] * a[i * m + c]).sum();
                }
            }
            w
        } else {
            let mut g = vec![0.0; p * p];
            for i in 0..n {
                let row = &xm[i * p..(i + 1) * p];
                for a in 0..p {
                    for b in 0..p {
                        g[a * p + b] += row[a] * row[b];
                    }
                }
            }
            (0..p).for_each(|a| g[a * p + a] += alpha);
            let mut xty = vec![0.0; p * m];
            for i in 0..n {
                for t in 0..p {
                    for c in 0..m {
                        xty[t * m + c] += xm[i * p + t] * yv[i * m + c];
                    }
                }
            }
            cholesky_solve(&mut g, p, &xty, m)
        };
        Ridge {
            classes,
            mean,
            sd,
            w,
        }
    }

    pub fn predict(&self, x: &[f32]) -> &str {
        let d = self.mean.len();
        let m = self.classes.len();
        let mut best = (f64::MIN, 0);
        for c in 0..m {
            let mut s = self.w[d * m + c];
            for (j, xj) in x.iter().enumerate().take(d) {
                s += (f64::from(*xj) - self.mean[j]) / self.sd[j] * self.w[j * m + c];
            }
            if s > best.0 {
                best = (s, c);
            }
        }
        self.classes.get(best.1).map_or("", String::as_str)
    }
}

/// Accuracy of a probe and of always guessing the training majority, averaged over folds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub embedding: String,
    pub attribute: String,
    pub fraction: f64,
    pub accuracy: f64,
    pub majority: f64,
    pub n_classes: usize,
}

/// Work-level k-fold probe of `attribute` on `items`, training on `fraction` of each training fold.
pub fn probe(
    catalogue: &Catalogue,
    items: &ItemTable,
    attribute: &str,
    fraction: f64,
    k: usize,
    seed: u64,
) -> ProbeResult {
    let folds = work_folds(catalogue, k, seed);
    let labels: Vec<String> = catalogue
        .tracks
        .iter()
        .map(|t| label(t, attribute))
        .collect();
    // Tracks whose label is unknown (recordings without a score) are neither trained nor
    // tested on: "unknown" is not a musical attribute.
    let known: Vec<usize> = (0..catalogue.len())
        .filter(|&i| labels[i] != crate::catalogue::UNKNOWN && !labels[i].is_empty())
        .collect();
    let (mut acc, mut maj, mut used) = (0.0, 0.0, 0);
    for f in 0..k {
        let train_all: Vec<usize> = known.iter().copied().filter(|&i| folds[i] != f).collect();
        let test: Vec<usize> = known.iter().copied().filter(|&i| folds[i] == f).collect();
        let train = subsample(&train_all, fraction, seed ^ f as u64);
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let x: Vec<Vec<f32>> = train.iter().map(|&i| items.row(i).to_vec()).collect();
        let y: Vec<String> = train.iter().map(|&i| labels[i].clone()).collect();
        let model = Ridge::fit(&x, &y, 10.0);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        y.iter().for_each(|l| *counts.entry(l).or_default() += 1);
        let majority = counts
            .iter()
            .max_by_key(|(_, c)| **c)
            .map(|(l, _)| *l)
            .unwrap_or("");
        acc += test
            .iter()
            .filter(|&&i| model.predict(items.row(i)) == labels[i])
            .count() as f64
            / test.len() as f64;
        maj += test.iter().filter(|&&i| labels[i] == majority).count() as f64 / test.len() as f64;
        used += 1;
    }
    let mut classes: Vec<&String> = known.iter().map(|&i| &labels[i]).collect();
    classes.sort();
    classes.dedup();
    ProbeResult {
        embedding: items.name.clone(),
        attribute: attribute.to_owned(),
        fraction,
        accuracy: acc / f64::from(used.max(1)),
        majority: maj / f64::from(used.max(1)),
        n_classes: classes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_separates_separable_classes() {
        let x: Vec<Vec<f32>> = (0..40)
            .map(|i| vec![if i % 2 == 0 { 1.0 } else { -1.0 }, (i as f32).sin()])
            .collect();
        let y: Vec<String> = (0..40)
            .map(|i| if i % 2 == 0 { "a".into() } else { "b".into() })
            .collect();
        for alpha in [0.1, 10.0] {
            let r = Ridge::fit(&x, &y, alpha);
            assert_eq!(r.predict(&[0.9, 0.0]), "a");
            assert_eq!(r.predict(&[-0.9, 0.0]), "b");
        }
        // Fewer rows than features: the dual path.
        let xw: Vec<Vec<f32>> = x
            .iter()
            .take(6)
            .map(|r| {
                (0..20)
                    .map(|j| if j == 0 { r[0] } else { r[1] * j as f32 })
                    .collect()
            })
            .collect();
        let r = Ridge::fit(&xw, &y[..6], 1.0);
        assert_eq!(r.predict(&xw[0]), y[0]);
    }
}
