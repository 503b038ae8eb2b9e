//! The corpus catalogue (`catalogue.jsonl` written by `make corpus`), read defensively: every
//! field has a default so a newer or older catalogue still loads, and `null` (what the corpus
//! writes for a real recording's score-only fields: tempo, key, dynamics) reads as "unknown".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{EvalError, Result};

/// One clip's metadata. Only metadata drives the synthetic listeners (never embeddings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Track {
    #[serde(deserialize_with = "nullable")]
    pub track_id: String,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub work_id: String,
    #[serde(deserialize_with = "nullable")]
    pub movement: String,
    #[serde(deserialize_with = "nullable")]
    pub composer: String,
    #[serde(deserialize_with = "nullable")]
    pub era: String,
    #[serde(deserialize_with = "nullable")]
    pub ensemble: String,
    #[serde(deserialize_with = "nullable")]
    pub lead_instrument: String,
    /// Rendered tempo; `None` for a recording without a score.
    pub tempo_bpm: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub tempo_band: String,
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    #[serde(deserialize_with = "nullable")]
    pub time_signature: String,
    /// Mean MIDI velocity; `None` for a recording without a score.
    pub mean_dynamic: Option<f64>,
    #[serde(deserialize_with = "nullable")]
    pub soundfont: String,
    #[serde(deserialize_with = "nullable")]
    pub collection: String,
    #[serde(deserialize_with = "nullable")]
    pub duration_s: f64,
    #[serde(deserialize_with = "nullable")]
    pub audio_path: String,
    #[serde(deserialize_with = "nullable")]
    pub distractor: bool,
}

/// A band of a track without the data to say (a real recording has no score tempo).
pub const UNKNOWN: &str = "unknown";

/// `null` as the type's default.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Track {
    /// Tempo band from the rendered BPM when the catalogue has none (slow < 72 ≤ moderate < 108),
    /// [`UNKNOWN`] without either.
    pub fn tempo_band(&self) -> &str {
        if !self.tempo_band.is_empty() {
            return &self.tempo_band;
        }
        match self.tempo_bpm {
            None => UNKNOWN,
            Some(b) if b < 72.0 => "slow",
            Some(b) if b < 108.0 => "moderate",
            Some(_) => "fast",
        }
    }

    /// Dynamics band of the mean MIDI velocity: soft < 70 ≤ medium < 95 ≤ loud; [`UNKNOWN`]
    /// without one.
    pub fn dynamics_band(&self) -> &'static str {
        match self.mean_dynamic {
            None => UNKNOWN,
            Some(v) if v < 70.0 => "soft",
            Some(v) if v < 95.0 => "medium",
            Some(_) => "loud",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_with_null_score_fields_loads_with_unknown_bands() {
        let dir = std::env::temp_dir().join(format!("cadenza-cat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("catalogue.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"track_id": "a", "tempo_bpm": 130, "mean_dynamic": 60.0, "key": "E minor"}"#,
                "\n",
                r#"{"track_id": "b", "tempo_bpm": null, "tempo_band": null, "key": null, "#,
                r#""mean_dynamic": null, "distractor": true, "midi_programs": null}"#,
                "\n"
            ),
        )
        .unwrap();
        let c = Catalogue::load(&path).unwrap();
        let (a, b) = (&c.tracks[0], &c.tracks[1]);
        assert_eq!((a.tempo_band(), a.dynamics_band()), ("fast", "soft"));
        assert_eq!((b.tempo_band(), b.dynamics_band()), (UNKNOWN, UNKNOWN));
        assert!(b.distractor && b.key.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
