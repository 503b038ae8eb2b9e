//! The corpus catalogue (`catalogue.jsonl` written by `make corpus`), read defensively: every
//! field has a default so a newer or older catalogue still loads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// One clip's metadata. Only metadata drives the synthetic listeners (never embeddings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Track {
    pub track_id: String,
    pub title: String,
    pub work_id: String,
    pub movement: String,
    pub composer: String,
    pub era: String,
    pub ensemble: String,
    pub lead_instrument: String,
    pub tempo_bpm: f64,
    pub tempo_band: String,
    pub key: String,
    pub time_signature: String,
    pub mean_dynamic: f64,
    pub soundfont: String,
    pub collection: String,
    pub duration_s: f64,
    pub audio_path: String,
    pub distractor: bool,
}

impl Track {
    /// Tempo band from the rendered BPM when the catalogue has none (slow < 72 ≤ moderate < 108).
    pub fn tempo_band(&self) -> &str {
        if !self.tempo_band.is_empty() {
            return &self.tempo_band;
        }
        match self.tempo_bpm {
            b if b < 72.0 => "slow",
            b if b < 108.0 => "moderate",
            _ => "fast",
        }
    }

    /// Dynamics band of the mean MIDI velocity: soft < 70 ≤ medium < 95 ≤ loud.
    pub fn dynamics_band(&self) -> &'static str {
        match self.mean_dynamic {
            v if v < 70.0 => "soft",
            v if v < 95.0 => "medium",
            _ => "loud",
        }
    }

    /// Grouping key for work-level splits: a clip without a work is its own work.
    pub fn work_key(&self) -> &str {
        if self.work_id.is_empty() {
            &self.track_id
        } else {
            &self.work_id
        }
    }
}

/// The catalogue: tracks in file order; a track's position is its item index everywhere.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// Directory the catalogue was read from (audio paths are relative to it).
    pub dir: PathBuf,
    pub tracks: Vec<Track>,
    by_id: HashMap<String, usize>,
}

impl Catalogue {
    pub fn new(dir: PathBuf, tracks: Vec<Track>) -> Self {
        let by_id = tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.track_id.clone(), i))
            .collect();
        Catalogue { dir, tracks, by_id }
    }

    /// Read `catalogue.jsonl`; blank lines are skipped, a bad row is an error with its line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let mut tracks = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let t: Track = serde_json::from_str(line).map_err(|source| EvalError::Json {
                path: path.to_owned(),
                line: i + 1,
                source,
            })?;
            tracks.push(t);
        }
        if tracks.is_empty() {
            return Err(EvalError::Invalid(format!("{}: no tracks", path.display())));
        }
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(Self::new(dir, tracks))
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn index_of(&self, track_id: &str) -> Option<usize> {
        self.by_id.get(track_id).copied()
    }

    /// Absolute path of a track's audio.
    pub fn audio_path(&self, i: usize) -> PathBuf {
        self.dir.join(&self.tracks[i].audio_path)
    }

    /// Index of each track's work (dense ids, for grouped splits).
    pub fn work_ids(&self) -> Vec<usize> {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        self.tracks
            .iter()
            .map(|t| {
                let n = ids.len();
                *ids.entry(t.work_key()).or_insert(n)
            })
            .collect()
    }
}
