//! Ranking: serves `cadenza.v1.Recommender` and `cadenza.v1.Catalog` from the vector index.
//!
//! Candidates come from the `tracks` collection by nearest-neighbour search on a query vector
//! built from the listener's state (`users` collection): the mean of their history (`knn`),
//! one query per taste centroid merged by best similarity (`multicentroid`), or their own
//! favourites (`popular`). Heard tracks are left out by an index filter (not by over-fetching),
//! filters on metadata run in the index, `diversity` re-ranks the pool with MMR, and every item
//! says why it was chosen: the nearest track of the listener's history and the tags they share.
//!
//! The rules are `cadenza_core`'s; this crate converts between the wire, the index and them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cadenza_core::{Candidate, TrackId, TrackLabel, UserId, UserState, cosine, explain, mmr};
use cadenza_index::{Condition, Filter, IndexError, Point, PointId, SearchRequest, VectorIndex};
use cadenza_proto::v1::catalog_server::{Catalog, CatalogServer};
use cadenza_proto::v1::recommender_server::{Recommender, RecommenderServer};
use cadenza_proto::v1::{
    self as pb, ContinueRequest, GetTrackRequest, GetUserStateRequest, ListTracksReply,
    ListTracksRequest, RecommendReply, RecommendRequest, RecommendedTrack, SimilarRequest,
};
use cadenza_svc::catalog::{TRACKS, USERS, payload_track_id, point_id, track_metadata, track_tags};
use cadenza_svc::grpc::{self, ServerArgs};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

/// Strategies `Recommend` knows.
pub const STRATEGIES: [&str; 3] = ["knn", "multicentroid", "popular"];

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct RankingOptions {
    /// Most tracks one request may ask for.
    pub max_k: usize,
    /// Shown in every reply: which embedding model the vectors come from.
    pub model_version: String,
    /// Neighbours fetched per query vector before re-ranking (MMR, multi-value filters).
    pub candidate_pool: usize,
    /// Most tracks a `ContinueSession` request may name.
    pub max_session: usize,
}

impl Default for RankingOptions {
    fn default() -> Self {
        RankingOptions {
            max_k: 100,
            model_version: "MTT_musicnn".into(),
            candidate_pool: 200,
            max_session: 500,
        }
    }
}

/// The ranking service.
#[derive(Debug, Clone)]
pub struct Ranking {
    index: Arc<dyn VectorIndex>,
    options: Arc<RankingOptions>,
}

/// The API routes (recommender + catalogue) with auth and the message-size limit of `server`.
pub fn routes(ranking: Ranking, server: &ServerArgs) -> tonic::service::Routes {
    add_to(tonic::service::Routes::default(), ranking, server)
}

/// `routes` plus the recommender and catalogue (one server for several services).
pub fn add_to(
    routes: tonic::service::Routes,
    ranking: Ranking,
    server: &ServerArgs,
) -> tonic::service::Routes {
    let auth = server.auth();
    let recommender =
        RecommenderServer::new(ranking.clone()).max_decoding_message_size(server.max_message_bytes);
    let catalog = CatalogServer::new(ranking).max_decoding_message_size(server.max_message_bytes);
    let a = auth.clone();
    routes
        .add_service(InterceptedService::new(recommender, move |r| a.check(r)))
        .add_service(InterceptedService::new(catalog, move |r| auth.check(r)))
}

fn index_error(e: IndexError) -> Status {
    match e {
        IndexError::InvalidRequest(m) => Status::invalid_argument(m),
        e => Status::unavailable(format!("vector index: {e}")),
    }
}

/// A track as the index holds it.
#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    vector: Vec<f32>,
    payload: cadenza_index::Payload,
}

impl Track {
    fn from_point(p: Point) -> Option<Track> {
        let id = TrackId::new(payload_track_id(&p.payload)?).ok()?;
        Some(Track {
            id,
            vector: p.vector,
            payload: p.payload,
        })
    }

    fn tags(&self) -> Vec<String> {
        track_tags(&self.payload)
            .into_iter()
            .map(|t| t.tag)
            .collect()
    }

    fn label(&self) -> TrackLabel {
        let meta = track_metadata(&self.payload);
        TrackLabel {
            title: if meta.title.is_empty() {
                self.id.to_string()
            } else {
                meta.title
            },
            tags: self.tags(),
        }
    }
}

/// The wire filter as index conditions. A field with one value is matched in the index; a
/// field with several (an OR) is checked on the candidate pool afterwards, since the index
/// seam has no OR.
struct Filters {
    index: Filter,
    any_of: Vec<(&'static str, Vec<String>)>,
}

impl Filters {
    fn new(f: Option<&pb::Filter>, exclude: &BTreeSet<TrackId>) -> Result<Filters, Status> {
        let mut index = Filter::default();
        if !exclude.is_empty() {
            index = index.and_not(Condition::HasId(
                exclude.iter().map(|t| point_id(t.as_str())).collect(),
            ));
        }
        let mut any_of = Vec::new();
        if let Some(f) = f {
            for (key, values) in [
                ("ensemble", &f.ensembles),
                ("lead_instrument", &f.lead_instruments),
                ("era", &f.eras),
                ("composer", &f.composers),
            ] {
                match values.as_slice() {
                    [] => {}
                    [one] => index = index.and(Condition::keyword(key, one.clone())),
                    many => any_of.push((key, many.to_vec())),
                }
            }
            let (lo, hi) = (f.min_tempo_bpm, f.max_tempo_bpm);
            if !(lo.is_finite() && hi.is_finite()) || lo < 0.0 || hi < 0.0 {
                return Err(Status::invalid_argument(
                    "tempo bounds must be finite, non-negative BPM (0 = unbounded)",
                ));
            }
            if lo > 0.0 && hi > 0.0 && lo > hi {
                return Err(Status::invalid_argument(format!(
                    "min_tempo_bpm {lo} is above max_tempo_bpm {hi}"
                )));
            }
            if lo > 0.0 || hi > 0.0 {
                index = index.and(Condition::range(
                    "tempo_bpm",
                    (lo > 0.0).then_some(f64::from(lo)),
                    (hi > 0.0).then_some(f64::from(hi)),
                ));
            }
        }
        Ok(Filters { index, any_of })
    }

    fn keeps(&self, payload: &cadenza_index::Payload) -> bool {
        self.any_of.iter().all(|(key, values)| {
            payload
                .get(*key)
                .and_then(|v| v.as_str())
                .is_some_and(|v| values.iter().any(|w| w == v))
        })
    }
}

fn check_k(k: u32, max: usize) -> Result<usize, Status> {
    match k as usize {
        0 => Ok(10.min(max)),
        k if k > max => Err(Status::invalid_argument(format!(
            "k = {k} is more than the {max} tracks one request may ask for"
        ))),
        k => Ok(k),
    }
}

fn check_diversity(d: f32) -> Result<f32, Status> {
    if (0.0..=1.0).contains(&d) {
        Ok(d)
    } else {
        Err(Status::invalid_argument(format!(
            "diversity {d} is outside 0..1 (0 = pure relevance, 1 = maximal variety)"
        )))
    }
}

fn track_id(raw: &str) -> Result<TrackId, Status> {
    TrackId::new(raw).map_err(|e| Status::invalid_argument(e.to_string()))
}

impl Ranking {
    pub fn new(index: Arc<dyn VectorIndex>, options: RankingOptions) -> Self {
        Ranking {
            index,
            options: Arc::new(options),
        }
    }

    /// The stored state of a listener.
    async fn user(&self, raw: &str) -> Result<UserState, Status> {
        let user = UserId::new(raw).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let stored = self
            .index
            .get(USERS, &[point_id(user.as_str())], false)
            .await
            .map_err(index_error)?;
        let Some(p) = stored.into_iter().next() else {
            return Err(Status::not_found(format!(
                "unknown user `{user}`: no listens recorded yet"
            )));
        };
        cadenza_session_aggregation::state_of(&p.payload)
            .map_err(|e| Status::internal(format!("stored state of `{user}` is unreadable: {e}")))
    }

    /// The tracks among `ids` that exist, by id.
    async fn tracks(&self, ids: &[TrackId]) -> Result<HashMap<TrackId, Track>, Status> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let points: Vec<PointId> = ids.iter().map(|t| point_id(t.as_str())).collect();
        let found = self
            .index
            .get(TRACKS, &points, true)
            .await
            .map_err(index_error)?;
        Ok(found
            .into_iter()
            .filter_map(Track::from_point)
            .map(|t| (t.id.clone(), t))
            .collect())
    }

    /// Neighbours of each query, merged (best similarity to any query wins), filtered.
    async fn candidates(
        &self,
        queries: &[Vec<f32>],
        filters: &Filters,
        k: usize,
        diversity: f32,
    ) -> Result<Vec<(Candidate, Track)>, Status> {
        let mut pool = k;
        if diversity > 0.0 || !filters.any_of.is_empty() || queries.len() > 1 {
            pool = pool.max(self.options.candidate_pool);
        }
        let mut lists = Vec::new();
        let mut tracks = HashMap::new();
        for q in queries {
            let mut req = SearchRequest::new(q.clone(), pool).with_vector(true);
            if !filters.index.is_empty() {
                req = req.filter(filters.index.clone());
            }
            let hits = self.index.search(TRACKS, &req).await.map_err(index_error)?;
            let mut list = Vec::new();
            for h in hits {
                if !filters.keeps(&h.payload) {
                    continue;
                }
                let Some(id) = payload_track_id(&h.payload).and_then(|t| TrackId::new(t).ok())
                else {
                    continue;
                };
                let vector = h.vector.unwrap_or_default();
                list.push(Candidate {
                    id: id.clone(),
                    vector: vector.clone(),
                    score: h.score,
                });
                tracks.insert(
                    id.clone(),
                    Track {
                        id,
                        vector,
                        payload: h.payload,
                    },
                );
            }
            lists.push(list);
        }
        let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        let merged = cadenza_core::knn_candidates(&refs, lists);
        let ranked = mmr(&merged, diversity, k);
        Ok(ranked
            .into_iter()
            .filter_map(|c| tracks.remove(&c.id).map(|t| (c, t)))
            .collect())
    }

    /// Reply items with explanations against `history` (nearest track by sound).
    fn items(&self, ranked: Vec<(Candidate, Track)>, history: &[Track]) -> Vec<RecommendedTrack> {
        let hist: Vec<(TrackId, Vec<f32>)> = history
            .iter()
            .map(|t| (t.id.clone(), t.vector.clone()))
            .collect();
        let labels: HashMap<&TrackId, TrackLabel> =
            history.iter().map(|t| (&t.id, t.label())).collect();
        ranked
            .into_iter()
            .map(|(c, t)| {
                let e = explain(&c.vector, &hist, &t.tags(), |id| labels.get(id).cloned());
                RecommendedTrack {
                    track_id: c.id.to_string(),
                    score: c.score,
                    metadata: Some(track_metadata(&t.payload)),
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

    /// The recent played tracks of a state that the index holds (the explanation's history).
    async fn history(&self, state: &UserState) -> Result<Vec<Track>, Status> {
        let mut ids: Vec<TrackId> = state.played_sequence().cloned().collect();
        ids.dedup();
        let found = self.tracks(&ids).await?;
        let mut seen = BTreeSet::new();
        Ok(ids
            .iter()
            .rev()
            .filter(|t| seen.insert((*t).clone()))
            .filter_map(|t| found.get(t).cloned())
            .collect())
    }

    async fn recommend_inner(&self, req: RecommendRequest) -> Result<RecommendReply, Status> {
        let k = check_k(req.k, self.options.max_k)?;
        let diversity = check_diversity(req.diversity)?;
        let strategy = if req.strategy.is_empty() {
            "knn"
        } else {
            req.strategy.as_str()
        };
        if !STRATEGIES.contains(&strategy) {
            return Err(Status::invalid_argument(format!(
                "unknown strategy `{strategy}`; known: {}",
                STRATEGIES.join(", ")
            )));
        }
        let state = self.user(&req.user_id).await?;
        let Some(profile) = state.profile.get().filter(|p| p.iter().any(|x| *x != 0.0)) else {
            return Err(Status::failed_precondition(format!(
                "user `{}` has only skipped tracks so far: there is no taste to recommend from yet",
                state.user
            )));
        };
        let history = self.history(&state).await?;
        let heard = if req.include_heard || strategy == "popular" {
            BTreeSet::new()
        } else {
            state.heard()
        };
        let filters = Filters::new(req.filter.as_ref(), &heard)?;
        let ranked = match strategy {
            "multicentroid" => {
                let queries: Vec<Vec<f32>> = state
                    .centroids
                    .by_weight()
                    .into_iter()
                    .map(|c| c.mean.clone())
                    .collect();
                let queries = if queries.is_empty() {
                    vec![profile.to_vec()]
                } else {
                    queries
                };
                self.candidates(&queries, &filters, k, diversity).await?
            }
            "popular" => self.popular(&state, profile, &filters, k).await?,
            _ => {
                self.candidates(&[profile.to_vec()], &filters, k, diversity)
                    .await?
            }
        };
        Ok(self.reply(strategy, self.items(ranked, &history)))
    }

    /// Personalised popularity: the listener's own most-played tracks (ties by closeness to
    /// their profile), within the filter.
    async fn popular(
        &self,
        state: &UserState,
        profile: &[f32],
        filters: &Filters,
        k: usize,
    ) -> Result<Vec<(Candidate, Track)>, Status> {
        let ids: Vec<TrackId> = state.play_counts.keys().cloned().collect();
        let found = self.tracks(&ids).await?;
        let max = state.play_counts.values().copied().max().unwrap_or(1);
        let mut out: Vec<(Candidate, Track)> = found
            .into_values()
            .filter(|t| {
                filters.index.matches(point_id(t.id.as_str()), &t.payload)
                    && filters.keeps(&t.payload)
            })
            .map(|t| {
                let plays = state.play_counts.get(&t.id).copied().unwrap_or(0);
                let score = cadenza_core::personal_popularity(plays, max)
                    + 1e-3 * cosine(profile, &t.vector);
                (
                    Candidate {
                        id: t.id.clone(),
                        vector: t.vector.clone(),
                        score,
                    },
                    t,
                )
            })
            .collect();
        out.sort_by(|a, b| b.0.score.total_cmp(&a.0.score).then(a.0.id.cmp(&b.0.id)));
        out.truncate(k);
        Ok(out)
    }

    async fn similar_inner(&self, req: SimilarRequest) -> Result<RecommendReply, Status> {
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
            .candidates(std::slice::from_ref(&seed.vector), &filters, k, diversity)
            .await?;
        Ok(self.reply("similar", self.items(ranked, &[seed])))
    }

    async fn continue_inner(&self, req: ContinueRequest) -> Result<RecommendReply, Status> {
        let k = check_k(req.k, self.options.max_k)?;
        let diversity = check_diversity(req.diversity)?;
        if req.track_ids.is_empty() {
            return Err(Status::invalid_argument(
                "a session needs at least one track id",
            ));
        }
        if req.track_ids.len() > self.options.max_session {
            return Err(Status::invalid_argument(format!(
                "{} tracks in the session; at most {} are read",
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
        // Recency-weighted mean: the latest track counts most (0.7 per step back).
        let dim = found.values().next().map_or(0, |t| t.vector.len());
        let mut query = vec![0f32; dim];
        let n = ids.len();
        for (i, t) in ids.iter().enumerate() {
            let w = 0.7f32.powi((n - 1 - i) as i32);
            for (q, x) in query.iter_mut().zip(&found[t].vector) {
                *q += w * x;
            }
        }
        let mut exclude: BTreeSet<TrackId> = ids.iter().cloned().collect();
        if !req.user_id.is_empty() {
            match self.user(&req.user_id).await {
                Ok(state) => exclude.extend(state.heard()),
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

#[tonic::async_trait]
impl Recommender for Ranking {
    async fn recommend(
        &self,
        request: Request<RecommendRequest>,
    ) -> Result<Response<RecommendReply>, Status> {
        grpc::observe("Recommend", async {
            self.recommend_inner(request.into_inner())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn similar_tracks(
        &self,
        request: Request<SimilarRequest>,
    ) -> Result<Response<RecommendReply>, Status> {
        grpc::observe("SimilarTracks", async {
            self.similar_inner(request.into_inner())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn continue_session(
        &self,
        request: Request<ContinueRequest>,
    ) -> Result<Response<RecommendReply>, Status> {
        grpc::observe("ContinueSession", async {
            self.continue_inner(request.into_inner())
                .await
                .map(Response::new)
        })
        .await
    }
}

fn track_of(t: &Track) -> pb::Track {
    pb::Track {
        track_id: t.id.to_string(),
        metadata: Some(track_metadata(&t.payload)),
        top_tags: track_tags(&t.payload),
        duration_s: t
            .payload
            .get("duration_s")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
        model: t
            .payload
            .get("model")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
    }
}

#[tonic::async_trait]
impl Catalog for Ranking {
    async fn get_track(
        &self,
        request: Request<GetTrackRequest>,
    ) -> Result<Response<pb::Track>, Status> {
        grpc::observe("GetTrack", async {
            let id = track_id(&request.into_inner().track_id)?;
            let t = self
                .tracks(std::slice::from_ref(&id))
                .await?
                .remove(&id)
                .ok_or_else(|| Status::not_found(format!("unknown track id `{id}`")))?;
            Ok(Response::new(track_of(&t)))
        })
        .await
    }

    async fn list_tracks(
        &self,
        request: Request<ListTracksRequest>,
    ) -> Result<Response<ListTracksReply>, Status> {
        grpc::observe("ListTracks", async {
            let req = request.into_inner();
            let size = match req.page_size {
                0 => 50,
                n if n > 500 => {
                    return Err(Status::invalid_argument(format!(
                        "page_size {n} is above 500"
                    )));
                }
                n => n as usize,
            };
            let offset = if req.page_token.is_empty() {
                None
            } else {
                Some(req.page_token.parse::<PointId>().map_err(|_| {
                    Status::invalid_argument(format!(
                        "page_token {:?} is not one this server handed out",
                        req.page_token
                    ))
                })?)
            };
            let (points, next) = self
                .index
                .scroll(TRACKS, offset, size)
                .await
                .map_err(index_error)?;
            Ok(Response::new(ListTracksReply {
                tracks: points
                    .into_iter()
                    .filter_map(Track::from_point)
                    .map(|t| track_of(&t))
                    .collect(),
                next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
            }))
        })
        .await
    }

    async fn get_user_state(
        &self,
        request: Request<GetUserStateRequest>,
    ) -> Result<Response<pb::UserState>, Status> {
        grpc::observe("GetUserState", async {
            let s = self.user(&request.into_inner().user_id).await?;
            Ok(Response::new(pb::UserState {
                user_id: s.user.to_string(),
                listen_count: s.listen_count,
                skip_count: s.skip_count,
                recent_track_ids: s.recent_tracks().map(|t| t.to_string()).collect(),
                play_counts: s
                    .play_counts
                    .iter()
                    .map(|(t, n)| (t.to_string(), *n))
                    .collect(),
                session_count: s.session_count,
                last_event_ms: s.last_ts_ms,
                profile_dims: s.profile.dims() as u32,
                centroid_count: s.centroids.len() as u32,
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests;
