//! The three lists: for a listener (`Recommend`), for a track (`SimilarTracks`) and for a
//! session in progress (`ContinueSession`). Each builds query vectors, fetches candidates
//! from the index, re-ranks them with `cadenza_core` and explains every item.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cadenza_core::{Candidate, History, TrackId, UserState, cosine, explain_with, mmr};
use cadenza_index::{Point, PointId, SearchRequest};
use cadenza_proto::v1::{
    self as pb, ContinueRequest, RecommendReply, RecommendRequest, RecommendedTrack, SimilarRequest,
};
use cadenza_svc::catalog::{TRACKS, point_id, track_metadata};
use tonic::Status;

use crate::filters::Filters;
use crate::{Ranking, STRATEGIES, Track, check_diversity, check_k, index_error, track_id};

/// Weight of a session track one step older than the next (`ContinueSession`).
const RECENCY_DECAY: f32 = 0.7;

impl Ranking {
    /// Neighbours of each query under each filter alternative, merged (best similarity to
    /// any query wins), then the top `k` — by MMR when `diversity` > 0.
    async fn candidates(
        &self,
        queries: &[Vec<f32>],
        filters: &Filters,
        k: usize,
        diversity: f32,
    ) -> Result<Vec<(Candidate, Track)>, Status> {
        let mut pool = k;
        if diversity > 0.0 || filters.checks_pool() || queries.len() > 1 {
            pool = pool.max(self.options.candidate_pool);
        }
        // An index with points in memory searches for ids alone and shares its points;
        // otherwise the search brings payloads and vectors in the same round trip.
        let shared = self.index.shares_points();
        let mut lists = Vec::new();
        let mut tracks = HashMap::new();
        for q in queries {
            for alternative in &filters.alternatives {
                let mut req = SearchRequest::new(q.clone(), pool)
                    .with_payload(!shared)
                    .with_vector(!shared)
                    .ef(self.options.search_ef);
                if !alternative.is_empty() {
                    req = req.filter(alternative.clone());
                }
                let hits = self.index.search(TRACKS, &req).await.map_err(index_error)?;
                let points: Vec<(Arc<Point>, f32)> = if shared {
                    let ids: Vec<PointId> = hits.iter().map(|h| h.id).collect();
                    let mut by_id: HashMap<PointId, Arc<Point>> = self
                        .index
                        .get_shared(TRACKS, &ids, true)
                        .await
                        .map_err(index_error)?
                        .into_iter()
                        .map(|p| (p.id, p))
                        .collect();
                    // A hit deleted since the search is left out.
                    hits.iter()
                        .filter_map(|h| Some((by_id.remove(&h.id)?, h.score)))
                        .collect()
                } else {
                    hits.into_iter()
                        .map(|h| {
                            let point = Point {
                                id: h.id,
                                vector: h.vector.unwrap_or_default(),
                                payload: h.payload,
                            };
                            (Arc::new(point), h.score)
                        })
                        .collect()
                };
                let mut list = Vec::with_capacity(points.len());
                for (point, score) in points {
                    if !filters.keeps(&point.payload) {
                        continue;
                    }
                    let Some(t) = Track::from_point(point) else {
                        continue;
                    };
                    list.push(Candidate {
                        id: t.id.clone(),
                        vector: t.vector().to_vec(),
                        score,
                    });
                    tracks.insert(t.id.clone(), t);
                }
                lists.push(list);
            }
        }
        let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let merged = cadenza_core::knn_candidates(&refs, lists);
        Ok(mmr(&merged, diversity, k)
            .into_iter()
            .filter_map(|c| tracks.remove(&c.id).map(|t| (c, t)))
            .collect())
    }

    /// Reply items, each explained by its nearest track of `history` (most recent first).
    fn items(&self, ranked: Vec<(Candidate, Track)>, history: &[Track]) -> Vec<RecommendedTrack> {
        // Prepared once: each history vector at unit length, for every item's nearest track.
        let hist = History::new(history.iter().map(|t| (&t.id, t.vector())));
        // Labelled on demand: only the history tracks nearest to an item are named.
        let by_id: HashMap<&TrackId, &Track> = history.iter().map(|t| (&t.id, t)).collect();
        ranked
            .into_iter()
            .map(|(c, t)| {
                let e = explain_with(&c.vector, &hist, &t.tags(), |id| {
                    by_id.get(id).map(|t| t.label())
                });
                RecommendedTrack {
                    track_id: c.id.to_string(),
                    score: c.score,
                    metadata: Some(track_metadata(t.payload())),
                    explanation: Some(pb::Explanation {
                        nearest_history_track_id: e
                            .nearest
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                        similarity: e.similarity,
                        shared_tags: e.shared_tags,
                        text: e.text,
                    }),
                }
            })
            .collect()
    }

    fn reply(&self, strategy: &str, tracks: Vec<RecommendedTrack>) -> RecommendReply {
        RecommendReply {
            tracks,
            strategy: strategy.to_owned(),
            model_version: self.options.model_version.clone(),
        }
    }

    /// The listener's played tracks that the index holds, most recent first, once each (the
    /// explanations' history), fetched with one read.
    async fn history(&self, state: &UserState) -> Result<Vec<Track>, Status> {
        let played: Vec<&TrackId> = state.played_sequence().collect();
        let mut seen = BTreeSet::new();
        let ids: Vec<TrackId> = played
            .into_iter()
            .rev()
            .filter(|t| seen.insert(*t))
            .cloned()
            .collect();
        let mut found = self.tracks(&ids).await?;
        Ok(ids.iter().filter_map(|t| found.remove(t)).collect())
    }

    pub(crate) async fn recommend_inner(
        &self,
        req: RecommendRequest,
    ) -> Result<RecommendReply, Status> {
        let k = check_k(req.k, self.options.max_k)?;
        let diversity = check_diversity(req.diversity)?;
        let strategy = if req.strategy.is_empty() {
            STRATEGIES[0]
        } else {
            req.strategy.as_str()
        };
        let model = self.models.get(strategy);
        if !STRATEGIES.contains(&strategy) && model.is_none() {
            return Err(Status::invalid_argument(format!(
                "unknown strategy `{strategy}`; known: {}",
                self.strategies().join(", ")
            )));
        }
        let state = self.user(&req.user_id).await?;
        let Some(profile) = state.profile.get().filter(|p| p.iter().any(|x| *x != 0.0)) else {
            return Err(Status::failed_precondition(format!(
                "user `{}` has only skipped tracks so far: there is no taste to recommend from \
                 yet (a play of at least part of a track makes one)",
                state.user
            )));
        };
        let history = self.history(&state).await?;
        // Personal popularity is about repeats: what was heard is the point.
        let heard = if req.include_heard || strategy == "popular" {
            BTreeSet::new()
        } else {
            state.heard()
        };
        let filters = Filters::new(req.filter.as_ref(), &heard)?;
        let ranked = match strategy {
            _ if model.is_some() => {
                let model = model.expect("checked");
                self.model_candidates(model, &state, &heard, &filters, k, diversity)
                    .await?
            }
            "multicentroid" => {
                // Heaviest taste first; `knn_candidates` scores each track by its best cosine
                // to any centroid, so a small taste is served as well as the main one.
                let mut queries: Vec<Vec<f32>> = state
                    .centroids
                    .by_weight()
                    .into_iter()
                    .map(|c| c.mean.clone())
                    .filter(|m| m.len() == profile.len() && m.iter().any(|x| *x != 0.0))
                    .collect();
                if queries.is_empty() {
                    queries.push(profile.to_vec());
                }
                self.candidates(&queries, &filters, k, diversity).await?
            }
            "popular" => {
                self.popular(&state, profile, &filters, k, diversity)
                    .await?
            }
            _ => {
                self.candidates(&[profile.to_vec()], &filters, k, diversity)
                    .await?
            }
        };
        Ok(self.reply(strategy, self.items(ranked, &history)))
    }

    /// A trained model's best tracks that pass the filter: the model ranks every track it
    /// knows, the index supplies each candidate's metadata and vector (in reads of one pool
    /// at a time, until enough pass the filter), then MMR picks `k`.
    async fn model_candidates(
        &self,
        model: std::sync::Arc<crate::Model>,
        state: &UserState,
        heard: &BTreeSet<TrackId>,
        filters: &Filters,
        k: usize,
        diversity: f32,
    ) -> Result<Vec<(Candidate, Track)>, Status> {
        let want = if diversity > 0.0 {
            k.max(self.options.candidate_pool)
        } else {
            k
        };
        let (st, ex) = (state.clone(), heard.clone());
        // A forward pass is milliseconds of CPU: off the async workers.
        let ranked = tokio::task::spawn_blocking(move || model.rank(&st, &ex))
            .await
            .map_err(|e| Status::internal(format!("model scoring failed: {e}")))?;
        let mut pool: Vec<Candidate> = Vec::with_capacity(want);
        let mut found: HashMap<TrackId, Track> = HashMap::new();
        // At most 20 index reads: a filter that almost nothing passes returns fewer items
        // rather than reading a large catalogue whole.
        for chunk in ranked
            .chunks(self.options.candidate_pool.max(want))
            .take(20)
        {
            let ids: Vec<TrackId> = chunk.iter().map(|(t, _)| t.clone()).collect();
            let mut tracks = self.tracks(&ids).await?;
            for (id, score) in chunk {
                // A track the model knows but the index no longer has is skipped.
                let Some(t) = tracks.remove(id) else {
                    continue;
                };
                if !filters.matches(point_id(id.as_str()), t.payload()) {
                    continue;
                }
                pool.push(Candidate {
                    id: id.clone(),
                    vector: t.vector().to_vec(),
                    score: *score,
                });
                found.insert(id.clone(), t);
                if pool.len() >= want {
                    break;
                }
            }
            if pool.len() >= want {
                break;
            }
        }
        Ok(mmr(&pool, diversity, k)
            .into_iter()
            .filter_map(|c| found.remove(&c.id).map(|t| (c, t)))
            .collect())
    }

    /// Personalised popularity: the listener's own most-played tracks (ties by closeness to
    /// their profile), within the filter.
    async fn popular(
        &self,
        state: &UserState,
        profile: &[f32],
        filters: &Filters,
        k: usize,
        diversity: f32,
    ) -> Result<Vec<(Candidate, Track)>, Status> {
        let ids: Vec<TrackId> = state.play_counts.keys().cloned().collect();
        let mut found = self.tracks(&ids).await?;
        found.retain(|id, t| filters.matches(point_id(id.as_str()), t.payload()));
        let max = state.play_counts.values().copied().max().unwrap_or(1);
        let pool: Vec<Candidate> = found
            .values()
            .map(|t| {
                let plays = state.play_counts.get(&t.id).copied().unwrap_or(0);
                // The cosine term is below one play's difference: it only breaks ties.
                let score = cadenza_core::personal_popularity(plays, max)
                    + 1e-3 * cosine(profile, t.vector());
                Candidate {
                    id: t.id.clone(),
                    vector: t.vector().to_vec(),
                    score,
                }
            })
            .collect();
        Ok(mmr(&pool, diversity, k)
            .into_iter()
            .filter_map(|c| found.remove(&c.id).map(|t| (c, t)))
            .collect())
    }

    pub(crate) async fn similar_inner(
        &self,
        req: SimilarRequest,
    ) -> Result<RecommendReply, Status> {
        let k = check_k(req.k, self.options.max_k)?;
        let diversity = check_diversity(req.diversity)?;
        let seed_id = track_id(&req.track_id)?;
        let seed = self
            .tracks(std::slice::from_ref(&seed_id))
            .await?
            .remove(&seed_id)
            .ok_or_else(|| Status::not_found(format!("unknown track id `{seed_id}`")))?;
        let filters = Filters::new(req.filter.as_ref(), &BTreeSet::from([seed_id]))?;
        let ranked = self
            .candidates(&[seed.vector().to_vec()], &filters, k, diversity)
            .await?;
        Ok(self.reply("similar", self.items(ranked, &[seed])))
    }

    pub(crate) async fn continue_inner(
        &self,
        req: ContinueRequest,
    ) -> Result<RecommendReply, Status> {
        let k = check_k(req.k, self.options.max_k)?;
        let diversity = check_diversity(req.diversity)?;
        if req.track_ids.is_empty() {
            return Err(Status::invalid_argument(
                "a session needs at least one track id (the tracks played so far, oldest first)",
            ));
        }
        if req.track_ids.len() > self.options.max_session {
            return Err(Status::invalid_argument(format!(
                "{} tracks in the session; at most {} may be sent (the most recent ones)",
                req.track_ids.len(),
                self.options.max_session
            )));
        }
        let ids = req
            .track_ids
            .iter()
            .map(|t| track_id(t))
            .collect::<Result<Vec<_>, _>>()?;
        let found = self.tracks(&ids).await?;
        if let Some(missing) = ids.iter().find(|t| !found.contains_key(*t)) {
            return Err(Status::not_found(format!("unknown track id `{missing}`")));
        }
        let vectors: Vec<&[f32]> = ids.iter().map(|t| found[t].vector()).collect();
        let query = session_query(&vectors);
        let mut exclude: BTreeSet<TrackId> = ids.iter().cloned().collect();
        if !req.user_id.is_empty() {
            match self.user(&req.user_id).await {
                Ok(state) => exclude.extend(state.heard()),
                // Anonymous radio: a listener we have no listens of has nothing to leave out.
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(s),
            }
        }
        let filters = Filters::new(req.filter.as_ref(), &exclude)?;
        let ranked = self.candidates(&[query], &filters, k, diversity).await?;
        let mut seen = BTreeSet::new();
        let history: Vec<Track> = ids
            .iter()
            .rev()
            .filter(|t| seen.insert((*t).clone()))
            .map(|t| found[t].clone())
            .collect();
        Ok(self.reply("continue", self.items(ranked, &history)))
    }
}

/// The query of a session: the recency-weighted mean of its tracks' vectors (oldest first;
/// each step back weighs [`RECENCY_DECAY`] times the next). When the tracks cancel out, the
/// latest track alone.
fn session_query(vectors: &[&[f32]]) -> Vec<f32> {
    let Some(latest) = vectors.last() else {
        return Vec::new();
    };
    let mut query = vec![0f32; latest.len()];
    let mut w = 1.0f32;
    for v in vectors.iter().rev() {
        if v.len() == query.len() {
            for (q, x) in query.iter_mut().zip(*v) {
                *q += w * x;
            }
        }
        w *= RECENCY_DECAY;
    }
    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_finite() && norm > 1e-6 {
        query
    } else {
        latest.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_track_weighs_most_and_opposites_fall_back_to_it() {
        let q = session_query(&[&[1.0, 0.0], &[0.0, 1.0]]);
        assert!(q[1] > q[0], "{q:?}");
        assert!((q[0] - RECENCY_DECAY).abs() < 1e-6, "{q:?}");
        assert_eq!(session_query(&[&[1.0, 0.0], &[-0.7, 0.0]]), [-0.7, 0.0]);
        assert_eq!(session_query(&[]), Vec::<f32>::new());
    }
}
