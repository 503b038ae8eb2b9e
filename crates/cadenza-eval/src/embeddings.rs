//! Where item tables come from: the pretrained models (through `cadenza-model`, cached per file
//! hash), MFCC statistics computed here, seeded random vectors, an existing `cadenza embed`
//! JSONL file, and — for tests of the harness only — vectors derived from metadata.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use cadenza_audio::{Limits, MelFrontEnd};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalogue::Catalogue;
use crate::error::{EvalError, Result};
use crate::items::ItemTable;

/// Seeded Gaussian vectors: the floor every real embedding must beat.
pub fn random_table(n: usize, dim: usize, seed: u64) -> ItemTable {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..n * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    ItemTable::new("random", dim, data)
}

/// "Audio-like" vectors made from metadata plus noise. This tests the harness (do rankers
/// learn anything when the signal exists?), never the embeddings: using it to compare
/// embedding models would be circular.
pub fn metadata_table(catalogue: &Catalogue, dim: usize, noise: f32, seed: u64) -> ItemTable {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut codes: HashMap<String, Vec<f32>> = HashMap::new();
    let mut code = |key: String, rng: &mut ChaCha8Rng| -> Vec<f32> {
        codes
            .entry(key)
            .or_insert_with(|| (0..dim).map(|_| StandardNormal.sample(&mut *rng)).collect())
            .clone()
    };
    let mut data = Vec::with_capacity(catalogue.len() * dim);
    for t in &catalogue.tracks {
        let parts = [
            code(format!("era:{}", t.era), &mut rng),
            code(format!("ens:{}", t.ensemble), &mut rng),
            code(format!("lead:{}", t.lead_instrument), &mut rng),
            code(format!("tempo:{}", t.tempo_band()), &mut rng),
            code(format!("dyn:{}", t.dynamics_band()), &mut rng),
        ];
        for d in 0..dim {
            let s: f32 = parts.iter().map(|p| p[d]).sum();
            let e: f32 = StandardNormal.sample(&mut rng);
            data.push(s + noise * e);
        }
    }
    ItemTable::new("metadata", dim, data)
}

/// 20 MFCCs (DCT-II of the model's log-mel bands) per frame, mean and standard deviation over
/// frames: the 40-d hand-crafted baseline.
pub fn mfcc_stats(path: &Path, front: &MelFrontEnd) -> Result<Vec<f32>> {
    let audio = cadenza_audio::load_for_model(path, &Limits::default())?;
    let mel = front.log_mel(&audio.samples)?;
    const N_MFCC: usize = 20;
    let m = mel.n_mels;
    let basis: Vec<f32> = (0..N_MFCC)
        .flat_map(|k| {
            (0..m).map(move |n| {
                let s = if k == 0 {
                    (1.0 / m as f64).sqrt()
                } else {
                    (2.0 / m as f64).sqrt()
                };
                (s * (std::f64::consts::PI * k as f64 * (n as f64 + 0.5) / m as f64).cos()) as f32
            })
        })
        .collect();
    let mut sum = [0.0f64; N_MFCC];
    let mut sq = [0.0f64; N_MFCC];
    for t in 0..mel.n_frames {
        let f = mel.frame(t);
        for k in 0..N_MFCC {
            let c: f32 = basis[k * m..(k + 1) * m]
                .iter()
                .zip(f)
                .map(|(a, b)| a * b)
                .sum();
            sum[k] += f64::from(c);
            sq[k] += f64::from(c).powi(2);
        }
    }
    let n = mel.n_frames.max(1) as f64;
    let mut out: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    out.extend(
        sum.iter()
            .zip(&sq)
            .map(|(s, q)| ((q / n - (s / n).powi(2)).max(0.0).sqrt()) as f32),
    );
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct Cached {
    model: String,
    vector: Vec<f32>,
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| EvalError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Compute (or read from `cache_dir/<model>/<sha256 of the file>.json`) each track's vector.
/// `model` is a pretrained model name or `mfcc`. Keying by file content means a re-rendered
/// corpus is re-embedded and an unchanged one never is.
pub fn embed_catalogue(
    catalogue: &Catalogue,
    model: &str,
    cache_dir: &Path,
    progress: bool,
) -> Result<ItemTable> {
    let dir = cache_dir.join(model);
    std::fs::create_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
    let bar = crate::progress::bar(catalogue.len() as u64, &format!("embed {model}"), progress);
    let front = MelFrontEnd::default();
    // One model session per worker thread (single-threaded inside), files spread over the
    // workers: on 2 cores this doubles the throughput of one session with 2 intra-op threads.
    let vectors: Vec<Result<Vec<f32>>> = {
        use rayon::prelude::*;
        (0..catalogue.len())
            .into_par_iter()
            .map(|i| {
                let v = vector_of(catalogue, i, model, &dir, &front);
                bar.inc(1);
                v
            })
            .collect()
    };
    let mut data = Vec::new();
    let mut dim = 0;
    for (i, v) in vectors.into_iter().enumerate() {
        let v = v?;
        if dim == 0 {
            dim = v.len();
        }
        if v.len() != dim || dim == 0 {
            return Err(EvalError::Invalid(format!(
                "{}: {model} vector of length {}, expected {dim}",
                catalogue.audio_path(i).display(),
                v.len()
            )));
        }
        data.extend(v);
    }
    bar.finish_and_clear();
    Ok(ItemTable::new(model, dim, data))
}

thread_local! {
    /// Each worker thread's model sessions, by model name (made on first use).
    static EMBEDDERS: std::cell::RefCell<HashMap<String, cadenza_model::Embedder>> =
        Default::default();
}

/// Track `i`'s vector from the cache, or computed (and cached) with this thread's session.
fn vector_of(
    catalogue: &Catalogue,
    i: usize,
    model: &str,
    dir: &Path,
    front: &MelFrontEnd,
) -> Result<Vec<f32>> {
    let path = catalogue.audio_path(i);
    let key = sha256_file(&path)?;
    let cache: PathBuf = dir.join(format!("{key}.json"));
    if let Some(c) = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
    {
        return Ok(c.vector);
    }
    let v = if model == "mfcc" {
        mfcc_stats(&path, front)?
    } else {
        EMBEDDERS.with_borrow_mut(|sessions| -> Result<Vec<f32>> {
            let e = match sessions.entry(model.to_owned()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(cadenza_model::Embedder::new(model, Default::default())?)
                }
            };
            Ok(e.embed_file(&path)?.vector().to_vec())
        })?
    };
    let bytes = serde_json::to_vec(&Cached {
        model: model.to_owned(),
        vector: v.clone(),
    })
    .map_err(|e| EvalError::Invalid(e.to_string()))?;
    // Written whole then renamed: a run stopped mid-write leaves no half file in the cache.
    let tmp = cache.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| EvalError::io(&tmp, e))?;
    std::fs::rename(&tmp, &cache).map_err(|e| EvalError::io(&cache, e))?;
    Ok(v)
}

/// Read a `cadenza embed --output` JSONL file, taking `layer` (e.g. `penultimate`) of each row
/// and matching rows to tracks by file name (the catalogue's `audio_path`).
pub fn from_embed_jsonl(path: &Path, catalogue: &Catalogue, layer: &str) -> Result<ItemTable> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut by_file: HashMap<String, Vec<f32>> = HashMap::new();
    let mut model = String::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: serde_json::Value =
            serde_json::from_str(line).map_err(|source| EvalError::Json {
                path: path.to_owned(),
                line: n + 1,
                source,
            })?;
        let file = row["path"].as_str().unwrap_or_default();
        let name = Path::new(file)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let v: Vec<f32> = row[layer]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_f64())
                    .map(|x| x as f32)
                    .collect()
            })
            .unwrap_or_default();
        model = row["model"].as_str().unwrap_or("embed").to_owned();
        by_file.insert(name.to_owned(), v);
    }
    let mut data = Vec::new();
    let mut dim = 0;
    for t in &catalogue.tracks {
        let name = Path::new(&t.audio_path)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let v = by_file.get(name).ok_or_else(|| {
            EvalError::Invalid(format!("{}: no row for {}", path.display(), t.audio_path))
        })?;
        dim = if dim == 0 { v.len() } else { dim };
        if v.len() != dim || dim == 0 {
            return Err(EvalError::Invalid(format!(
                "{}: layer {layer} missing or ragged",
                path.display()
            )));
        }
        data.extend_from_slice(v);
    }
    Ok(ItemTable::new(model, dim, data))
}
