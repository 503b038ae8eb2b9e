//! Checkpoints the ranking service loads: `<dir>/<method>.json` (what the method is and which
//! item table it expects) and, for trained methods, `<dir>/<method>.safetensors`.
//!
//! For the evaluation the frozen audio table is not stored: the caller passes the table it
//! trained on, and the sidecar's `embedding`, `dim` and `n_items` are checked against it.
//! For serving ([`save_for_serving`]) the sidecar also lists the track id of every row and
//! `<dir>/items.<embedding>.safetensors` holds the table as trained, so the ranking service
//! scores exactly what was evaluated (the index keeps vectors unit-normalised, which is not the
//! table the models saw) and knows which track each output row is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{
    Bert4Rec, Bert4RecConfig, Knn, MultiCentroid, PopFusion, Popularity, RandomRanker, Ranker,
    Shallow,
};
use crate::error::{EvalError, Result};
use crate::items::ItemTable;

/// A trained (or stateless) method, ready to be written.
#[derive(Debug)]
pub enum Checkpoint<'a> {
    Random {
        seed: u64,
    },
    Popularity(&'a Popularity),
    Knn,
    MultiCentroid {
        k: usize,
    },
    Shallow(&'a Shallow),
    Bert4Rec(&'a Bert4Rec),
    /// The same weights served with personalised-popularity fusion.
    Bert4RecPop(&'a Bert4Rec),
}

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    method: String,
    embedding: String,
    dim: usize,
    n_items: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    k: usize,
    #[serde(default)]
    plays: Vec<f32>,
    #[serde(default)]
    bert4rec: Option<Bert4RecConfig>,
    /// Track id of each item row (serving checkpoints only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    track_ids: Vec<String>,
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| EvalError::Invalid(e.to_string()))?;
    std::fs::write(path, s).map_err(|e| EvalError::io(path, e))
}

/// Write a method's checkpoint into `dir`; returns the sidecar's path.
pub fn save_ranker(dir: &Path, ckpt: Checkpoint<'_>, items: &ItemTable) -> Result<PathBuf> {
    save(dir, ckpt, items, &[])
}

/// Write a checkpoint the ranking service can serve: the method, the track id of each row of
/// `items`, and `items` itself.
pub fn save_for_serving(
    dir: &Path,
    ckpt: Checkpoint<'_>,
    items: &ItemTable,
    track_ids: &[String],
) -> Result<PathBuf> {
    if track_ids.len() != items.len() {
        return Err(EvalError::Invalid(format!(
            "{} track ids for {} item rows",
            track_ids.len(),
            items.len()
        )));
    }
    let table = items_path(dir, &items.name);
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let t: HashMap<String, Tensor> = [(
        "items".to_owned(),
        Tensor::from_vec(
            items.data.clone(),
            (items.len(), items.dim),
            &candle_core::Device::Cpu,
        )?,
    )]
    .into();
    candle_core::safetensors::save(&t, &table)?;
    save(dir, ckpt, items, track_ids)
}

fn items_path(dir: &Path, embedding: &str) -> PathBuf {
    dir.join(format!("items.{embedding}.safetensors"))
}

/// A method loaded for serving: the scorer, the track id of each of its rows, and the
/// embedding its table comes from.
#[derive(Debug)]
pub struct Served {
    pub ranker: Box<dyn Ranker>,
    pub track_ids: Vec<String>,
    pub embedding: String,
}

fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| EvalError::Json {
        path: path.to_owned(),
        line: 1,
        source,
    })
}

/// Load `<dir>/<name>.json` written by [`save_for_serving`], with its item table.
pub fn load_for_serving(dir: &Path, name: &str) -> Result<Served> {
    let path = dir.join(format!("{name}.json"));
    let side = read_sidecar(&path)?;
    if side.track_ids.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{}: not a serving checkpoint (no track ids; write it with `cadenza train`)",
            path.display()
        )));
    }
    let table = items_path(dir, &side.embedding);
    let t = candle_core::safetensors::load(&table, &candle_core::Device::Cpu)?;
    let data: Vec<f32> = t
        .get("items")
        .ok_or_else(|| EvalError::Invalid(format!("{}: no `items` tensor", table.display())))?
        .flatten_all()?
        .to_vec1()?;
    if data.len() != side.n_items * side.dim {
        return Err(EvalError::Invalid(format!(
            "{}: {} values, the sidecar says {} × {}",
            table.display(),
            data.len(),
            side.n_items,
            side.dim
        )));
    }
    let items = ItemTable::new(side.embedding.clone(), side.dim, data);
    Ok(Served {
        ranker: load_ranker(dir, name, &items)?,
        track_ids: side.track_ids,
        embedding: side.embedding,
    })
}

/// The methods a directory holds checkpoints for (sidecar names, sorted).
pub fn list_checkpoints(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    Ok(names)
}

fn save(
    dir: &Path,
    ckpt: Checkpoint<'_>,
    items: &ItemTable,
    track_ids: &[String],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut side = Sidecar {
        method: String::new(),
        embedding: items.name.clone(),
        dim: items.dim,
        n_items: items.len(),
        seed: 0,
        k: 0,
        plays: Vec::new(),
        bert4rec: None,
        track_ids: track_ids.to_vec(),
    };
    match ckpt {
        Checkpoint::Random { seed } => (side.method, side.seed) = ("random".into(), seed),
        Checkpoint::Popularity(p) => {
            (side.method, side.plays) = ("popularity".into(), p.plays.clone())
        }
        Checkpoint::Knn => side.method = "knn".into(),
        Checkpoint::MultiCentroid { k } => (side.method, side.k) = ("multicentroid".into(), k),
        Checkpoint::Shallow(s) => {
            side.method = "shallow".into();
            let d = items.dim;
            let t: HashMap<String, Tensor> = [
                (
                    "w.weight".to_owned(),
                    Tensor::from_vec(s.w.clone(), (d, d), &candle_core::Device::Cpu)?,
                ),
                (
                    "w.bias".to_owned(),
                    Tensor::from_vec(s.b.clone(), d, &candle_core::Device::Cpu)?,
                ),
            ]
            .into();
            candle_core::safetensors::save(&t, dir.join("shallow.safetensors"))?;
        }
        Checkpoint::Bert4Rec(m) | Checkpoint::Bert4RecPop(m) => {
            let pop = matches!(ckpt, Checkpoint::Bert4RecPop(_));
            side.method = if pop {
                format!("{}_pop", m.name)
            } else {
                m.name.clone()
            };
            side.bert4rec = Some(m.config.clone());
            m.save(&dir.join(format!("{}.safetensors", side.method)))?;
        }
    }
    let path = dir.join(format!("{}.json", side.method));
    write_json(&path, &side)?;
    Ok(path)
}

/// Load the method `name` (`knn`, `bert4rec_pop`, …) from `dir` over the item table `items`.
pub fn load_ranker(dir: &Path, name: &str, items: &ItemTable) -> Result<Box<dyn Ranker>> {
    let path = dir.join(format!("{name}.json"));
    let side = read_sidecar(&path)?;
    if side.dim != items.dim || side.n_items != items.len() {
        return Err(EvalError::Invalid(format!(
            "{}: trained on {} ({} × {}), given {} ({} × {})",
            path.display(),
            side.embedding,
            side.n_items,
            side.dim,
            items.name,
            items.len(),
            items.dim
        )));
    }
    let weights = dir.join(format!("{name}.safetensors"));
    Ok(match side.method.as_str() {
        "random" => Box::new(RandomRanker {
            n_items: items.len(),
            seed: side.seed,
        }),
        "popularity" => Box::new(Popularity { plays: side.plays }),
        "knn" => Box::new(Knn::new(items)),
        "multicentroid" => Box::new(MultiCentroid::new(items, side.k)),
        "shallow" => {
            let t = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu)?;
            let get = |k: &str| -> Result<Vec<f32>> {
                Ok(t.get(k)
                    .ok_or_else(|| EvalError::Invalid(format!("{}: no {k}", weights.display())))?
                    .flatten_all()?
                    .to_vec1()?)
            };
            Box::new(Shallow::from_weights(
                items,
                get("w.weight")?,
                get("w.bias")?,
            ))
        }
        m if m.starts_with("bert4rec") => {
            let cfg = side.bert4rec.ok_or_else(|| {
                EvalError::Invalid(format!("{}: no bert4rec config", path.display()))
            })?;
            let model = Bert4Rec::load(items, cfg, &weights)?;
            if m.ends_with("_pop") {
                Box::new(PopFusion {
                    inner: model,
                    name: m.to_owned(),
                })
            } else {
                Box::new(model)
            }
        }
        other => {
            return Err(EvalError::Invalid(format!(
                "{}: unknown method {other}",
                path.display()
            )));
        }
    })
}
