//! Ranking: serves `cadenza.v1.Recommender` and `cadenza.v1.Catalog` from the vector index.
//!
//! Candidates come from the `tracks` collection by nearest-neighbour search on a query vector
//! built from the listener's state (`users` collection): the mean of their history (`knn`),
//! one query per taste centroid merged by best similarity (`multicentroid`), or their own
//! favourites (`popular`). Heard tracks are left out by an index filter (not by over-fetching),
//! filters on metadata run in the index, `diversity` re-ranks the pool with MMR, and every item
//! says why it was chosen: the nearest track of the listener's history and the tags they share.
//!
//! The rules are `cadenza_core`'s; this crate converts between the wire, the index and them:
//! `filters` (wire filter → index filters), `recommend` (the three lists), `catalog` (reads).
//! The gRPC handlers below only time the call and delegate.

mod catalog;
mod filters;
mod models;
mod recommend;

pub use models::{Model, Models, SERVED};

use std::collections::HashMap;
use std::sync::Arc;

use cadenza_core::{TrackId, TrackLabel, UserId, UserState};
use cadenza_index::{IndexError, Point, PointId, VectorIndex};
use cadenza_proto::v1::catalog_server::{Catalog, CatalogServer};
use cadenza_proto::v1::recommender_server::{Recommender, RecommenderServer};
use cadenza_proto::v1::{
    self as pb, ContinueRequest, GetTrackRequest, GetUserStateRequest, ListTracksReply,
    ListTracksRequest, RecommendReply, RecommendRequest, SimilarRequest,
};
use cadenza_svc::catalog::{TRACKS, USERS, payload_track_id, point_id, track_metadata, track_tags};
use cadenza_svc::grpc::{self, ServerArgs};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

/// Strategies `Recommend` always knows (from the index); trained models loaded with
/// [`Ranking::with_models`] add theirs.
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
    /// HNSW beam width of candidate searches (`None`: the engine's default, 100).
    pub search_ef: Option<usize>,
}

impl Default for RankingOptions {
    fn default() -> Self {
        RankingOptions {
            max_k: 100,
            model_version: "MTT_musicnn".into(),
            candidate_pool: 200,
            max_session: 500,
            search_ef: Some(DEFAULT_SEARCH_EF),
        }
    }
}

/// HNSW beam width of candidate searches unless set: recall@10 against brute force was 0.9997
/// at 32 and 1.0 from 48 on 100k tracks (`cadenza-load recall`, BENCHMARKS.md); 64 leaves room
/// for filtered searches, and costs less than the engine's default of 100.
pub const DEFAULT_SEARCH_EF: usize = 64;

/// The ranking service.
#[derive(Debug, Clone)]
pub struct Ranking {
    index: Arc<dyn VectorIndex>,
    options: Arc<RankingOptions>,
    models: Arc<Models>,
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

/// Every index failure as the status a client can act on: the engine or server being down
/// is transient (UNAVAILABLE, retry); a refusal of what we asked is a fault on our side or in
/// the stored data (INTERNAL: retrying will not help).
fn index_error(e: IndexError) -> Status {
    match e {
        IndexError::Backend { .. } | IndexError::Io { .. } | IndexError::Task(_) => {
            Status::unavailable(format!("vector index unavailable: {e}"))
        }
        IndexError::UnknownCollection(_) => {
            Status::unavailable(format!("vector index not ready: {e}"))
        }
        IndexError::InvalidName(_)
        | IndexError::DimensionMismatch { .. }
        | IndexError::DistanceMismatch { .. }
        | IndexError::InvalidVector { .. }
        | IndexError::InvalidRequest(_) => {
            Status::internal(format!("vector index refused the request: {e}"))
        }
    }
}

/// A track as the index holds it (the point shared with the index's cache, not copied).
#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    point: Arc<Point>,
}

impl Track {
    fn from_point(p: Arc<Point>) -> Option<Track> {
        let id = TrackId::new(payload_track_id(&p.payload)?).ok()?;
        Some(Track { id, point: p })
    }

    fn vector(&self) -> &[f32] {
        &self.point.vector
    }

    fn payload(&self) -> &cadenza_index::Payload {
        &self.point.payload
    }

    fn tags(&self) -> Vec<String> {
        track_tags(self.payload())
            .into_iter()
            .map(|t| t.tag)
            .collect()
    }

    fn label(&self) -> TrackLabel {
        let meta = track_metadata(self.payload());
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
            models: Arc::default(),
        }
    }

    /// Also serve these trained models, each under its own strategy name.
    pub fn with_models(mut self, models: Models) -> Self {
        self.models = Arc::new(models);
        self
    }

    /// Every strategy `Recommend` accepts.
    pub fn strategies(&self) -> Vec<&str> {
        STRATEGIES
            .iter()
            .copied()
            .chain(self.models.names())
            .collect()
    }

    /// The stored state of a listener.
    async fn user(&self, raw: &str) -> Result<UserState, Status> {
        let user = UserId::new(raw).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let stored = self
            .index
            .get_shared(USERS, &[point_id(user.as_str())], false)
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
            .get_shared(TRACKS, &points, true)
            .await
            .map_err(index_error)?;
        Ok(found
            .into_iter()
            .filter_map(Track::from_point)
            .map(|t| (t.id.clone(), t))
            .collect())
    }
}

#[tonic::async_trait]
impl Recommender for Ranking {
    async fn recommend(
        &self,
        request: Request<RecommendRequest>,
    ) -> Result<Response<RecommendReply>, Status> {
        grpc::observe(grpc::call("Recommend", request.metadata()), async {
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
        grpc::observe(grpc::call("SimilarTracks", request.metadata()), async {
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
        grpc::observe(grpc::call("ContinueSession", request.metadata()), async {
            self.continue_inner(request.into_inner())
                .await
                .map(Response::new)
        })
        .await
    }
}

#[tonic::async_trait]
impl Catalog for Ranking {
    async fn get_track(
        &self,
        request: Request<GetTrackRequest>,
    ) -> Result<Response<pb::Track>, Status> {
        grpc::observe(grpc::call("GetTrack", request.metadata()), async {
            self.get_track_inner(&request.into_inner().track_id)
                .await
                .map(Response::new)
        })
        .await
    }

    async fn list_tracks(
        &self,
        request: Request<ListTracksRequest>,
    ) -> Result<Response<ListTracksReply>, Status> {
        grpc::observe(grpc::call("ListTracks", request.metadata()), async {
            self.list_tracks_inner(request.into_inner())
                .await
                .map(Response::new)
        })
        .await
    }

    async fn get_user_state(
        &self,
        request: Request<GetUserStateRequest>,
    ) -> Result<Response<pb::UserState>, Status> {
        grpc::observe(grpc::call("GetUserState", request.metadata()), async {
            self.user_state_inner(&request.into_inner().user_id)
                .await
                .map(Response::new)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
