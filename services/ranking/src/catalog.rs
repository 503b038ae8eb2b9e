//! Catalogue reads: one track, the catalogue page by page, a listener's state.

use cadenza_core::UserState;
use cadenza_index::PointId;
use cadenza_proto::v1::{self as pb, ListTracksReply, ListTracksRequest};
use cadenza_svc::catalog::{TRACKS, track_metadata, track_tags};
use tonic::Status;

use crate::{Ranking, Track, index_error, track_id};

/// Page size when the request leaves it at 0.
pub(crate) const DEFAULT_PAGE: usize = 50;
/// Largest page; bigger requests are served this many (AIP-158's coercion).
pub(crate) const MAX_PAGE: usize = 500;

impl Ranking {
    pub(crate) async fn get_track_inner(&self, raw: &str) -> Result<pb::Track, Status> {
        let id = track_id(raw)?;
        let t = self
            .tracks(std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .ok_or_else(|| Status::not_found(format!("unknown track id `{id}`")))?;
        Ok(track_of(&t))
    }

    /// A page of the catalogue in the index's stable (point id) order. The page token is the
    /// next point id in decimal: opaque to clients, stable across replicas of one index.
    pub(crate) async fn list_tracks_inner(
        &self,
        req: ListTracksRequest,
    ) -> Result<ListTracksReply, Status> {
        let size = match req.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let offset = if req.page_token.is_empty() {
            None
        } else {
            Some(req.page_token.parse::<PointId>().map_err(|_| {
                Status::invalid_argument(format!(
                    "page_token {:?} is not one this server handed out: pass the \
                     next_page_token of the previous reply, or nothing for the first page",
                    req.page_token
                ))
            })?)
        };
        let (points, next) = self
            .index
            .scroll(TRACKS, offset, size)
            .await
            .map_err(index_error)?;
        Ok(ListTracksReply {
            tracks: points
                .into_iter()
                .map(std::sync::Arc::new)
                .filter_map(Track::from_point)
                .map(|t| track_of(&t))
                .collect(),
            next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
        })
    }

    pub(crate) async fn user_state_inner(&self, raw: &str) -> Result<pb::UserState, Status> {
        Ok(user_state_of(&self.user(raw).await?))
    }
}

fn track_of(t: &Track) -> pb::Track {
    pb::Track {
        track_id: t.id.to_string(),
        metadata: Some(track_metadata(t.payload())),
        top_tags: track_tags(t.payload()),
        duration_s: t
            .payload()
            .get("duration_s")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
        model: t
            .payload()
            .get("model")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The wire summary of a stored state.
fn user_state_of(s: &UserState) -> pb::UserState {
    pb::UserState {
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
        profile_dims: u32::try_from(s.profile.dims()).unwrap_or(u32::MAX),
        centroid_count: u32::try_from(s.centroids.len()).unwrap_or(u32::MAX),
    }
}
