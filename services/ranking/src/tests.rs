//! The recommender and catalogue over real loopback gRPC, on the in-memory reference index:
//! a 30-track catalogue in three clearly separated clusters, listeners with known tastes.

use std::collections::BTreeSet;

use cadenza_core::{Listen, StateConfig};
use cadenza_index::MemoryIndex;
use cadenza_proto::v1::catalog_client::CatalogClient;
use cadenza_proto::v1::recommender_client::RecommenderClient;
use cadenza_proto::v1::{TagScore, TrackMetadata};
use cadenza_svc::Shutdown;
use cadenza_svc::catalog::{track_payload, tracks_spec, users_spec};
use tonic::Code;
use tonic::transport::Channel;

use super::*;

const DIM: usize = 8;
const CLUSTERS: [(&str, &str); 3] = [
    ("violin", "Bach"),
    ("piano", "Chopin"),
    ("strings", "Haydn"),
];

fn vector(cluster: usize, i: usize) -> Vec<f32> {
    let mut v = vec![0.05; DIM];
    v[cluster * 2] = 1.0;
    v[cluster * 2 + 1] = 0.1 * i as f32;
    v[7] = 0.01 * (i % 3) as f32;
    v
}

async fn catalogue() -> Arc<dyn VectorIndex> {
    catalogue_in(Arc::new(MemoryIndex::new())).await
}

async fn catalogue_in(index: Arc<dyn VectorIndex>) -> Arc<dyn VectorIndex> {
    index.ensure_collection(&tracks_spec(DIM)).await.unwrap();
    index.ensure_collection(&users_spec(DIM)).await.unwrap();
    let mut points = Vec::new();
    for (c, (instrument, composer)) in CLUSTERS.iter().enumerate() {
        for i in 0..10 {
            let id = format!("{instrument}-{i}");
            let meta = TrackMetadata {
                title: format!("{composer} no. {i}"),
                composer: (*composer).into(),
                lead_instrument: (*instrument).into(),
                ensemble: if i % 2 == 0 { "solo" } else { "orchestra" }.into(),
                tempo_bpm: 60.0 + 10.0 * i as f32,
                ..Default::default()
            };
            let tags = vec![
                TagScore {
                    tag: (*instrument).into(),
                    score: 0.9,
                },
                TagScore {
                    tag: "classical".into(),
                    score: 0.8,
                },
            ];
            points.push(
                Point::new(point_id(&id), vector(c, i))
                    .with_payload(track_payload(&id, &meta, &tags, "test", 30.0)),
            );
        }
    }
    index.upsert(TRACKS, points).await.unwrap();
    index
}

/// Store the state of `user` after playing `tracks` (a fraction < 0.3 is a skip).
async fn listener(index: &dyn VectorIndex, user: &str, tracks: &[(&str, f32)]) {
    let mut state = UserState::new(UserId::new(user).unwrap(), StateConfig::default());
    for (i, (t, fraction)) in tracks.iter().enumerate() {
        let (c, n) = t.split_once('-').unwrap();
        let c = CLUSTERS.iter().position(|(name, _)| *name == c).unwrap();
        let l = Listen::new(
            &format!("{user}-{i}"),
            user,
            t,
            1_700_000_000_000 + i as i64 * 60_000,
            *fraction,
            *fraction < 0.3,
            i64::MAX,
        )
        .unwrap();
        state.apply(&l, Some(&vector(c, n.parse().unwrap())));
    }
    let (point, _) = cadenza_session_aggregation::user_point(&state, DIM).unwrap();
    index.upsert(USERS, vec![point]).await.unwrap();
}

struct Api {
    rec: RecommenderClient<Channel>,
    cat: CatalogClient<Channel>,
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn api(index: Arc<dyn VectorIndex>, token: Option<&str>) -> Api {
    let options = RankingOptions {
        max_k: 20,
        ..RankingOptions::default()
    };
    api_with(index, token, options).await
}

async fn api_with(
    index: Arc<dyn VectorIndex>,
    token: Option<&str>,
    options: RankingOptions,
) -> Api {
    api_of(Ranking::new(index, options), token).await
}

async fn api_of(ranking: Ranking, token: Option<&str>) -> Api {
    let mut server = ServerArgs::on("127.0.0.1:0".parse().unwrap());
    server.auth_token = token.map(str::to_owned);
    let shutdown = Shutdown::new();
    let addr = grpc::serve(&server, routes(ranking, &server), shutdown.clone())
        .await
        .unwrap();
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Api {
        rec: RecommenderClient::new(channel.clone()),
        cat: CatalogClient::new(channel),
        addr,
        shutdown,
    }
}

fn ids(reply: &RecommendReply) -> Vec<&str> {
    reply.tracks.iter().map(|t| t.track_id.as_str()).collect()
}

fn req(user: &str, k: u32) -> RecommendRequest {
    RecommendRequest {
        user_id: user.into(),
        k,
        ..Default::default()
    }
}

#[tokio::test]
async fn knn_recommends_the_listened_cluster_without_what_was_heard() {
    let index = catalogue().await;
    listener(
        index.as_ref(),
        "ana",
        &[
            ("violin-0", 1.0),
            ("violin-1", 1.0),
            ("violin-2", 0.9),
            ("piano-0", 0.1),
        ],
    )
    .await;
    let mut api = api(index, None).await;
    let reply = api.rec.recommend(req("ana", 5)).await.unwrap().into_inner();
    assert_eq!((reply.strategy.as_str(), reply.tracks.len()), ("knn", 5));
    for t in &reply.tracks {
        assert!(t.track_id.starts_with("violin-"), "{:?}", ids(&reply));
        assert!(!["violin-0", "violin-1", "violin-2"].contains(&t.track_id.as_str()));
        let e = t.explanation.as_ref().unwrap();
        assert!(e.nearest_history_track_id.starts_with("violin-"), "{e:?}");
        assert!(e.text.contains("because you listened to Bach no."), "{e:?}");
        assert_eq!(e.shared_tags, ["violin", "classical"]);
        assert_eq!(t.metadata.as_ref().unwrap().composer, "Bach");
    }
    let scores: Vec<f32> = reply.tracks.iter().map(|t| t.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let heard = api
        .rec
        .recommend(RecommendRequest {
            include_heard: true,
            ..req("ana", 3)
        })
        .await
        .unwrap();
    assert!(
        ids(heard.get_ref())
            .iter()
            .any(|t| ["violin-0", "violin-1", "violin-2"].contains(t)),
        "{:?}",
        ids(heard.get_ref())
    );
}

#[tokio::test]
async fn multicentroid_serves_both_tastes_where_the_mean_serves_neither_well() {
    let index = catalogue().await;
    listener(
        index.as_ref(),
        "ben",
        &[
            ("violin-0", 1.0),
            ("piano-0", 1.0),
            ("violin-1", 1.0),
            ("piano-1", 1.0),
        ],
    )
    .await;
    let mut api = api(index, None).await;
    let reply = api
        .rec
        .recommend(RecommendRequest {
            strategy: "multicentroid".into(),
            ..req("ben", 6)
        })
        .await
        .unwrap()
        .into_inner();
    let got = ids(&reply);
    assert!(
        got.iter().any(|t| t.starts_with("violin-")) && got.iter().any(|t| t.starts_with("piano-")),
        "{got:?}"
    );
    assert!(!got.iter().any(|t| t.starts_with("strings-")), "{got:?}");

    let popular = api
        .rec
        .recommend(RecommendRequest {
            strategy: "popular".into(),
            ..req("ben", 2)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        ids(&popular)
            .iter()
            .all(|t| ["violin-0", "piano-0", "violin-1", "piano-1"].contains(t)),
        "{:?}",
        ids(&popular)
    );
}

#[tokio::test]
async fn filters_and_diversity_shape_the_list() {
    let index = catalogue().await;
    listener(index.as_ref(), "cy", &[("violin-0", 1.0)]).await;
    let mut api = api(index, None).await;
    let filtered = |f: pb::Filter| RecommendRequest {
        filter: Some(f),
        ..req("cy", 20)
    };
    let solo = api
        .rec
        .recommend(filtered(pb::Filter {
            ensembles: vec!["solo".into()],
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(!solo.get_ref().tracks.is_empty());
    assert!(
        solo.get_ref()
            .tracks
            .iter()
            .all(|t| t.metadata.as_ref().unwrap().ensemble == "solo")
    );
    let two = api
        .rec
        .recommend(filtered(pb::Filter {
            lead_instruments: vec!["piano".into(), "strings".into()],
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(two.get_ref().tracks.len(), 20);
    assert!(
        two.get_ref()
            .tracks
            .iter()
            .all(|t| !t.track_id.starts_with("violin"))
    );
    let tempo = api
        .rec
        .recommend(filtered(pb::Filter {
            min_tempo_bpm: 100.0,
            max_tempo_bpm: 120.0,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(
        tempo
            .get_ref()
            .tracks
            .iter()
            .all(|t| (100.0..=120.0).contains(&t.metadata.as_ref().unwrap().tempo_bpm))
    );
    assert_eq!(
        tempo.get_ref().tracks.len(),
        3 * 3,
        "tempi 100, 110, 120 in each of the 3 clusters (the heard track is at 60)"
    );

    let plain = api.rec.recommend(req("cy", 5)).await.unwrap().into_inner();
    let diverse = api
        .rec
        .recommend(RecommendRequest {
            diversity: 0.9,
            ..req("cy", 5)
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(ids(&plain), ids(&diverse));
    let clusters = |r: &RecommendReply| {
        r.tracks
            .iter()
            .map(|t| t.track_id.split('-').next().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
            .len()
    };
    assert!(
        clusters(&diverse) > clusters(&plain),
        "{:?} vs {:?}",
        ids(&diverse),
        ids(&plain)
    );
}

#[tokio::test]
async fn similar_tracks_and_session_continuation() {
    let index = catalogue().await;
    listener(index.as_ref(), "dee", &[("piano-5", 1.0)]).await;
    let mut api = api(index, None).await;
    let sim = api
        .rec
        .similar_tracks(SimilarRequest {
            track_id: "piano-3".into(),
            k: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !ids(&sim).contains(&"piano-3") && ids(&sim).iter().all(|t| t.starts_with("piano-")),
        "{:?}",
        ids(&sim)
    );
    assert_eq!(
        sim.tracks[0]
            .explanation
            .as_ref()
            .unwrap()
            .nearest_history_track_id,
        "piano-3"
    );

    let cont = ContinueRequest {
        track_ids: vec!["violin-1".into(), "strings-4".into()],
        k: 3,
        user_id: "dee".into(),
        ..Default::default()
    };
    let next = api.rec.continue_session(cont).await.unwrap().into_inner();
    let got = ids(&next);
    assert!(
        got[0].starts_with("strings-"),
        "the latest track weighs most: {got:?}"
    );
    assert!(
        !got.contains(&"violin-1") && !got.contains(&"strings-4") && !got.contains(&"piano-5"),
        "{got:?}"
    );
}

#[tokio::test]
async fn every_bad_request_gets_the_right_code_and_a_sentence() {
    let index = catalogue().await;
    listener(index.as_ref(), "eve", &[("violin-0", 1.0)]).await;
    listener(index.as_ref(), "skipper", &[("violin-0", 0.1)]).await;
    let mut api = api(index, None).await;
    let cases: Vec<(RecommendRequest, Code, &str)> = vec![
        (req("nobody", 5), Code::NotFound, "unknown user `nobody`"),
        (req("bad id!", 5), Code::InvalidArgument, "user id"),
        (req("eve", 21), Code::InvalidArgument, "more than the 20"),
        (
            RecommendRequest {
                strategy: "magic".into(),
                ..req("eve", 5)
            },
            Code::InvalidArgument,
            "known: knn, multicentroid, popular",
        ),
        (
            RecommendRequest {
                diversity: 1.5,
                ..req("eve", 5)
            },
            Code::InvalidArgument,
            "diversity 1.5",
        ),
        (
            RecommendRequest {
                diversity: f32::NAN,
                ..req("eve", 5)
            },
            Code::InvalidArgument,
            "diversity",
        ),
        (req("skipper", 5), Code::FailedPrecondition, "only skipped"),
        (
            RecommendRequest {
                filter: Some(pb::Filter {
                    min_tempo_bpm: 120.0,
                    max_tempo_bpm: 60.0,
                    ..Default::default()
                }),
                ..req("eve", 5)
            },
            Code::InvalidArgument,
            "above max_tempo_bpm",
        ),
    ];
    for (r, code, want) in cases {
        let err = api.rec.recommend(r).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(want),
            "{:?} should mention {want:?}",
            err.message()
        );
    }
    let err = api
        .rec
        .similar_tracks(SimilarRequest {
            track_id: "ghost".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "unknown track id `ghost`")
    );
    let err = api
        .rec
        .continue_session(ContinueRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = api
        .rec
        .continue_session(ContinueRequest {
            track_ids: vec!["violin-0".into(), "ghost".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("`ghost`"), "{err:?}");
    let err = api
        .cat
        .get_track(GetTrackRequest {
            track_id: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = api
        .cat
        .list_tracks(ListTracksRequest {
            page_size: 10,
            page_token: "abc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn catalogue_reads_page_through_everything_and_show_user_state() {
    let index = catalogue().await;
    listener(
        index.as_ref(),
        "fay",
        &[("violin-0", 1.0), ("violin-0", 1.0), ("piano-1", 0.1)],
    )
    .await;
    let mut api = api(index, None).await;
    let mut seen = BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = api
            .cat
            .list_tracks(ListTracksRequest {
                page_size: 7,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.tracks.len() <= 7);
        seen.extend(page.tracks.into_iter().map(|t| t.track_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 30);
    let t = api
        .cat
        .get_track(GetTrackRequest {
            track_id: "piano-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            t.metadata.unwrap().composer.as_str(),
            t.top_tags[0].tag.as_str()
        ),
        ("Chopin", "piano")
    );
    let s = api
        .cat
        .get_user_state(GetUserStateRequest {
            user_id: "fay".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.listen_count, s.skip_count, s.play_counts["violin-0"]),
        (3, 1, 2)
    );
    assert_eq!(s.recent_track_ids, ["violin-0", "violin-0", "piano-1"]);
    assert_eq!(s.profile_dims as usize, DIM);
}

#[tokio::test]
async fn a_token_guards_the_api_but_not_health_and_reflection_lists_the_services() {
    let index = catalogue().await;
    let mut api = api(index, Some("s3cret")).await;
    let err = api.rec.recommend(req("anyone", 5)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let channel = Channel::from_shared(format!("http://{}", api.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let ok = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        ok.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("{reply:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "cadenza.v1.Recommender",
        "cadenza.v1.Catalog",
        "cadenza.v1.Ingest",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn several_values_of_a_field_are_searched_in_the_index_not_hoped_for_in_a_pool() {
    let index = catalogue().await;
    listener(index.as_ref(), "gil", &[("violin-0", 1.0)]).await;
    // A pool of 3 neighbours of a violin lover holds only violins: filtering it afterwards
    // would leave nothing. Each value is its own filtered search.
    let options = RankingOptions {
        candidate_pool: 3,
        ..RankingOptions::default()
    };
    let mut api = api_with(index, None, options).await;
    let reply = api
        .rec
        .recommend(RecommendRequest {
            filter: Some(pb::Filter {
                lead_instruments: vec!["piano".into(), "strings".into()],
                ensembles: vec!["solo".into(), "orchestra".into()],
                composers: vec!["Chopin".into()],
                ..Default::default()
            }),
            ..req("gil", 5)
        })
        .await
        .unwrap()
        .into_inner();
    let got = ids(&reply);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got.iter().all(|t| t.starts_with("piano-")), "{got:?}");

    let diverse = api
        .rec
        .recommend(RecommendRequest {
            filter: Some(pb::Filter {
                lead_instruments: vec!["piano".into(), "strings".into()],
                ..Default::default()
            }),
            diversity: 0.5,
            ..req("gil", 4)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diverse.tracks.len(), 4, "{:?}", ids(&diverse));
    assert!(ids(&diverse).iter().all(|t| !t.starts_with("violin-")));
}

#[tokio::test]
async fn popular_is_the_listeners_own_favourites_most_played_first() {
    let index = catalogue().await;
    listener(
        index.as_ref(),
        "hal",
        &[
            ("piano-4", 1.0),
            ("violin-2", 1.0),
            ("piano-4", 1.0),
            ("strings-1", 0.1),
            ("piano-4", 1.0),
            ("violin-2", 1.0),
            ("violin-7", 1.0),
        ],
    )
    .await;
    let mut api = api(index, None).await;
    let popular = |k, filter| RecommendRequest {
        strategy: "popular".into(),
        filter,
        ..req("hal", k)
    };
    let reply = api
        .rec
        .recommend(popular(10, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.strategy, "popular");
    assert_eq!(
        ids(&reply),
        ["piano-4", "violin-2", "violin-7"],
        "skips are not favourites"
    );
    let violins = api
        .rec
        .recommend(popular(
            10,
            Some(pb::Filter {
                lead_instruments: vec!["violin".into()],
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&violins), ["violin-2", "violin-7"]);
}

#[tokio::test]
async fn more_bad_requests_name_what_is_wrong() {
    let index = catalogue().await;
    listener(index.as_ref(), "ida", &[("violin-0", 1.0)]).await;
    let mut api = api(index, None).await;
    let err = api
        .cat
        .get_user_state(GetUserStateRequest {
            user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("no listens recorded yet"), "{err:?}");
    let err = api
        .rec
        .similar_tracks(SimilarRequest {
            track_id: "violin-1".into(),
            k: 21,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("20"), "{err:?}");
    let err = api
        .rec
        .similar_tracks(SimilarRequest {
            track_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = api
        .rec
        .continue_session(ContinueRequest {
            track_ids: vec!["violin-0".into(); 501],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("at most 500"), "{err:?}");
    let err = api
        .rec
        .continue_session(ContinueRequest {
            track_ids: vec!["violin-0".into()],
            user_id: "bad id!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // A listener we know nothing of only means nothing to leave out.
    let next = api
        .rec
        .continue_session(ContinueRequest {
            track_ids: vec!["violin-0".into()],
            user_id: "stranger".into(),
            k: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.tracks.len(), 3);
    assert!(!ids(&next).contains(&"violin-0"));

    // Oversized pages are served at the largest size rather than refused.
    let page = api
        .cat
        .list_tracks(ListTracksRequest {
            page_size: 100_000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.tracks.len(), page.next_page_token.as_str()), (30, ""));
}

#[tokio::test]
async fn an_index_that_cannot_answer_is_unavailable_not_a_crash() {
    // No collections: what a replica sees before its index exists.
    let index: Arc<dyn VectorIndex> = Arc::new(MemoryIndex::new());
    let mut api = api(index, None).await;
    let err = api.rec.recommend(req("ana", 5)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("vector index"), "{err:?}");
    let err = api
        .cat
        .get_track(GetTrackRequest {
            track_id: "violin-0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = api
        .cat
        .list_tracks(ListTracksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test]
async fn odd_inputs_get_answers_and_the_server_stays_up() {
    let index = catalogue().await;
    listener(index.as_ref(), "jo", &[("violin-0", 1.0), ("piano-0", 1.0)]).await;
    let mut api = api(index, None).await;
    let odd_filters = [
        pb::Filter {
            ensembles: vec![String::new(); 40],
            min_tempo_bpm: f32::MAX,
            ..Default::default()
        },
        pb::Filter {
            composers: (0..100).map(|i| format!("c{i}")).collect(),
            eras: vec!["é".repeat(1000)],
            max_tempo_bpm: 1e-30,
            ..Default::default()
        },
        pb::Filter {
            min_tempo_bpm: f32::NEG_INFINITY,
            ..Default::default()
        },
    ];
    for filter in odd_filters {
        for strategy in ["", "knn", "multicentroid", "popular", "\0", "KNN"] {
            for diversity in [0.0, 1.0, -0.0, f32::MIN_POSITIVE, f32::INFINITY] {
                let r = api
                    .rec
                    .recommend(RecommendRequest {
                        user_id: "jo".into(),
                        k: 20,
                        strategy: strategy.into(),
                        diversity,
                        include_heard: true,
                        filter: Some(filter.clone()),
                    })
                    .await;
                if let Err(e) = r {
                    assert_eq!(
                        e.code(),
                        Code::InvalidArgument,
                        "{strategy:?} {diversity}: {e:?}"
                    );
                }
            }
        }
        let r = api
            .rec
            .continue_session(ContinueRequest {
                track_ids: vec!["piano-0".into(), "piano-0".into(), "violin-9".into()],
                k: u32::MAX,
                diversity: 1.0,
                user_id: "jo".into(),
                filter: Some(filter.clone()),
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Code::InvalidArgument);
        for user in ["", " ", "x".repeat(10_000).as_str(), "jo\n"] {
            let e = api.rec.recommend(req(user, 1)).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        }
    }
    let ok = api.rec.recommend(req("jo", 3)).await.unwrap().into_inner();
    assert_eq!(ok.tracks.len(), 3);
}

/// The catalogue's vectors as a model's item table (the order `cadenza train` would use).
fn model_table(embedding: &str) -> (cadenza_eval::items::ItemTable, Vec<String>) {
    let mut data = Vec::new();
    let mut ids = Vec::new();
    for (c, (instrument, _)) in CLUSTERS.iter().enumerate() {
        for i in 0..10 {
            ids.push(format!("{instrument}-{i}"));
            data.extend(vector(c, i));
        }
    }
    (
        cadenza_eval::items::ItemTable::new(embedding, DIM, data),
        ids,
    )
}

/// A folder with a shallow net (identity weights: it ranks by closeness to the listener's
/// mean, so its answer is known) and an untrained BERT4Rec, as `cadenza train` writes them.
fn model_dir(embedding: &str) -> std::path::PathBuf {
    use cadenza_eval::methods::{Bert4Rec, Bert4RecConfig, Checkpoint, Shallow, save_for_serving};
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cadenza-ranking-models-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let (table, ids) = model_table(embedding);
    let mut w = vec![0f32; DIM * DIM];
    (0..DIM).for_each(|i| w[i * DIM + i] = 1.0);
    let shallow = Shallow::from_weights(&table, w, vec![0.0; DIM]);
    save_for_serving(&dir, Checkpoint::Shallow(&shallow), &table, &ids).unwrap();
    let cfg = Bert4RecConfig {
        max_len: 8,
        ..Default::default()
    };
    let bert = Bert4Rec::init(&table, cfg).unwrap();
    save_for_serving(&dir, Checkpoint::Bert4Rec(&bert), &table, &ids).unwrap();
    save_for_serving(&dir, Checkpoint::Bert4RecPop(&bert), &table, &ids).unwrap();
    dir
}

#[tokio::test]
async fn trained_models_are_served_as_strategies_with_filters_and_without_heard_tracks() {
    let index = catalogue().await;
    let heard = ["violin-0", "violin-1", "violin-2", "piano-0"];
    listener(
        index.as_ref(),
        "ana",
        &[
            ("violin-0", 1.0),
            ("violin-1", 1.0),
            ("violin-2", 0.9),
            ("piano-0", 0.1),
        ],
    )
    .await;
    let dir = model_dir("MTT_musicnn");
    let models = Models::load(&dir, "MTT_musicnn").unwrap();
    let ranking = Ranking::new(index, RankingOptions::default()).with_models(models);
    assert_eq!(
        ranking.strategies(),
        [
            "knn",
            "multicentroid",
            "popular",
            "bert4rec",
            "bert4rec_pop",
            "shallow"
        ]
    );
    let mut api = api_of(ranking, None).await;
    let with = |strategy: &str, filter: Option<pb::Filter>| RecommendRequest {
        strategy: strategy.into(),
        filter,
        ..req("ana", 5)
    };

    let reply = api
        .rec
        .recommend(with("shallow", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.strategy, "shallow");
    assert_eq!(reply.tracks.len(), 5);
    for t in &reply.tracks {
        assert!(t.track_id.starts_with("violin-"), "{:?}", ids(&reply));
        assert!(!heard.contains(&t.track_id.as_str()), "{:?}", ids(&reply));
        let e = t.explanation.as_ref().unwrap();
        assert!(e.nearest_history_track_id.starts_with("violin-"), "{e:?}");
    }
    let solo = pb::Filter {
        ensembles: vec!["solo".into()],
        ..Default::default()
    };
    let reply = api
        .rec
        .recommend(with("shallow", Some(solo)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.tracks.len(), 5, "{:?}", ids(&reply));
    for t in &reply.tracks {
        assert_eq!(t.metadata.as_ref().unwrap().ensemble, "solo", "{t:?}");
        assert!(!heard.contains(&t.track_id.as_str()));
    }

    for strategy in ["bert4rec", "bert4rec_pop"] {
        let reply = api
            .rec
            .recommend(RecommendRequest {
                diversity: 0.5,
                ..with(strategy, None)
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.strategy, strategy);
        assert_eq!(reply.tracks.len(), 5);
        let distinct: BTreeSet<&str> = ids(&reply).into_iter().collect();
        assert_eq!(distinct.len(), 5);
        assert!(
            ids(&reply).iter().all(|t| !heard.contains(t)),
            "{:?}",
            ids(&reply)
        );
    }

    let err = api.rec.recommend(with("magic", None)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("bert4rec_pop, shallow"),
        "{}",
        err.message()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_trained_on_other_vectors_or_a_folder_without_models_stops_start_up() {
    let dir = model_dir("MSD_musicnn");
    let err = Models::load(&dir, "MTT_musicnn").unwrap_err().to_string();
    assert!(
        err.contains("trained on MSD_musicnn") && err.contains("retrain"),
        "{err}"
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = Models::load(&empty, "MTT_musicnn").unwrap_err().to_string();
    assert!(err.contains("no served model"), "{err}");
    let err = format!(
        "{:#}",
        Models::load(&dir.join("missing"), "MTT_musicnn").unwrap_err()
    );
    assert!(err.contains("models folder"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_oversized_request_is_refused_with_the_limit_and_the_server_stays_up() {
    let index = catalogue().await;
    listener(index.as_ref(), "jo", &[("violin-0", 1.0)]).await;
    let mut api = api(index, None).await;
    // ~5 MB of filter values, over the 4 MiB default of CADENZA_MAX_MESSAGE_BYTES.
    let huge = RecommendRequest {
        user_id: "jo".into(),
        k: 5,
        filter: Some(pb::Filter {
            composers: vec!["x".repeat(1000); 5000],
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = api.rec.recommend(huge).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("too large"), "{err:?}");
    let ok = api
        .rec
        .recommend(RecommendRequest {
            user_id: "jo".into(),
            k: 5,
            ..Default::default()
        })
        .await
        .expect("the next request is served");
    assert!(!ok.into_inner().tracks.is_empty());
}

/// qdrant-edge hands out the points it keeps (`get_shared`) and `Recommend` searches it for
/// ids alone; every reply must equal the one from the reference index, which returns payloads
/// with the hits, also after a listener's state and a track's metadata are rewritten (the
/// cache must forget what it served before).
#[tokio::test]
async fn replies_over_shared_points_equal_those_over_search_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let edge: Arc<dyn VectorIndex> =
        Arc::new(cadenza_index::EdgeIndex::open(dir.path()).await.unwrap());
    assert!(edge.shares_points());
    let edge = catalogue_in(edge).await;
    let memory = catalogue().await;
    let plays = [("violin-0", 1.0), ("violin-1", 1.0), ("piano-2", 0.8)];
    for index in [&edge, &memory] {
        listener(index.as_ref(), "eve", &plays).await;
    }
    let mut apis = [
        api(edge.clone(), None).await,
        api(memory.clone(), None).await,
    ];
    let requests = || {
        vec![
            req("eve", 10),
            RecommendRequest {
                strategy: "multicentroid".into(),
                diversity: 0.5,
                ..req("eve", 8)
            },
            RecommendRequest {
                filter: Some(pb::Filter {
                    lead_instruments: vec!["piano".into(), "strings".into()],
                    ..Default::default()
                }),
                ..req("eve", 12)
            },
        ]
    };
    async fn replies(api: &mut Api, requests: Vec<RecommendRequest>) -> Vec<RecommendReply> {
        let mut out = Vec::new();
        for r in requests {
            out.push(api.rec.recommend(r).await.unwrap().into_inner());
        }
        let similar = SimilarRequest {
            track_id: "strings-3".into(),
            k: 9,
            ..Default::default()
        };
        out.push(api.rec.similar_tracks(similar).await.unwrap().into_inner());
        out
    }
    // Scores differ in the last float bits between the engines; ids, order, metadata and
    // explanations must not.
    fn shape(replies: Vec<RecommendReply>) -> Vec<Vec<(String, String, String)>> {
        replies
            .into_iter()
            .map(|r| {
                r.tracks
                    .into_iter()
                    .map(|t| {
                        let m = t.metadata.unwrap_or_default();
                        let e = t.explanation.unwrap_or_default();
                        (
                            t.track_id,
                            format!("{} {}", m.title, m.ensemble),
                            e.nearest_history_track_id,
                        )
                    })
                    .collect()
            })
            .collect()
    }
    let [edge_api, memory_api] = &mut apis;
    let first = shape(replies(edge_api, requests()).await);
    assert_eq!(first, shape(replies(memory_api, requests()).await));
    assert!(first.iter().all(|r| !r.is_empty()), "{first:?}");
    // New plays and a renamed track, written after the edge index served both.
    let mut renamed = None;
    for index in [&edge, &memory] {
        listener(
            index.as_ref(),
            "eve",
            &[("strings-0", 1.0), ("strings-1", 1.0)],
        )
        .await;
        let mut t = index
            .get(TRACKS, &[point_id("strings-4")], true)
            .await
            .unwrap();
        let mut p = t.pop().expect("strings-4 is in the catalogue");
        p.payload
            .insert("title".into(), serde_json::json!("Renamed"));
        renamed = Some(p.payload.clone());
        index.upsert(TRACKS, vec![p]).await.unwrap();
    }
    let second = shape(replies(edge_api, requests()).await);
    assert_eq!(second, shape(replies(memory_api, requests()).await));
    assert_ne!(first, second, "the edge index still served the old state");
    // SimilarTracks for strings-3 lists every other strings track, strings-4 by its new name.
    assert!(
        second[3]
            .iter()
            .any(|(id, title, _)| id == "strings-4" && title.starts_with("Renamed")),
        "{second:?} (payload {renamed:?})"
    );
}
