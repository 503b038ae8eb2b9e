//! Trained models served beside the index strategies: checkpoints written by `cadenza train`
//! (shallow net, BERT4Rec, BERT4Rec with personalised popularity), loaded once at start-up
//! and chosen per request by `strategy`.
//!
//! A model scores every track it was trained on from the listener's played sequence (oldest
//! first) and play counts; the index then supplies metadata and vectors for the best of them,
//! and filters, MMR and explanations work as for the index strategies. A track ingested after
//! training is not scored by a model until it is retrained (`cadenza train`); the index
//! strategies serve it at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use cadenza_core::{TrackId, UserState};
use cadenza_eval::methods::{Counts, Ranker, list_checkpoints, load_for_serving};

/// Methods `cadenza train` writes that this service serves (the rest — knn, popularity, … —
/// are served from the index directly).
pub const SERVED: [&str; 5] = [
    "shallow",
    "bert4rec",
    "bert4rec_pop",
    "bert4rec_id",
    "bert4rec_id_pop",
];

/// One loaded model and the track of each of its rows.
#[derive(Debug)]
pub struct Model {
    ranker: Box<dyn Ranker>,
    ids: Vec<TrackId>,
    row_of: HashMap<TrackId, usize>,
}

impl Model {
    /// Every known track with its score, best first, leaving out `exclude`.
    pub fn rank(&self, state: &UserState, exclude: &BTreeSet<TrackId>) -> Vec<(TrackId, f32)> {
        let history: Vec<usize> = state
            .played_sequence()
            .filter_map(|t| self.row_of.get(t).copied())
            .collect();
        let counts: Counts = state
            .play_counts
            .iter()
            .filter_map(|(t, n)| Some((*self.row_of.get(t)?, *n)))
            .collect();
        let scores = self.ranker.score_all(&history, &counts);
        let mut ranked: Vec<(TrackId, f32)> = self
            .ids
            .iter()
            .zip(scores)
            .filter(|(t, s)| s.is_finite() && !exclude.contains(*t))
            .map(|(t, s)| (t.clone(), s))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The loaded models by strategy name.
#[derive(Debug, Clone, Default)]
pub struct Models {
    by_name: BTreeMap<String, Arc<Model>>,
}

impl Models {
    /// Load every served checkpoint in `dir`. Each must have been trained on `embedding`
    /// vectors (the index's model); anything unreadable is an error naming the file, so a
    /// broken deployment stops at start-up instead of failing requests.
    pub fn load(dir: &Path, embedding: &str) -> anyhow::Result<Models> {
        let names = list_checkpoints(dir)
            .with_context(|| format!("reading the models folder {}", dir.display()))?;
        let mut by_name = BTreeMap::new();
        for name in names {
            if !SERVED.contains(&name.as_str()) {
                tracing::info!(%name, "checkpoint not served as a model (the index serves it)");
                continue;
            }
            let served = load_for_serving(dir, &name)
                .with_context(|| format!("loading model `{name}` from {}", dir.display()))?;
            anyhow::ensure!(
                served.embedding == embedding,
                "model `{name}` in {} was trained on {} vectors, but this service's index holds \
                 {embedding}; retrain it with `cadenza train --embedding {embedding}`",
                dir.display(),
                served.embedding
            );
            let ids = served
                .track_ids
                .iter()
                .map(|t| TrackId::new(t.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("model `{name}`: a track id is invalid"))?;
            let row_of = ids
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i))
                .collect();
            tracing::info!(%name, tracks = ids.len(), "model loaded");
            by_name.insert(
                name,
                Arc::new(Model {
                    ranker: served.ranker,
                    ids,
                    row_of,
                }),
            );
        }
        anyhow::ensure!(
            !by_name.is_empty(),
            "{} holds no served model ({}); write some with `cadenza train --out {0}`",
            dir.display(),
            SERVED.join(", ")
        );
        Ok(Models { by_name })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Model>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
