//! `cadenza up`: all four services in one process on the in-process log and one qdrant-edge
//! index. What was ingested and listened to survives a clean stop and a SIGKILL.

use cadenza_proto::v1::{
    GetUserStateRequest, ListTracksRequest, ListenBatch, ListenRequest, RecommendRequest,
};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let data = dir.path().join("data").display().to_string();
    let args = [
        "up",
        "--data-dir",
        &data,
        "--grpc-addr",
        &addr.to_string(),
        "--metrics-addr",
        "off",
        "--threads",
        "1",
    ];
    let mut up = Proc::start(
        "cadenza up",
        binary("cadenza"),
        &args,
        &[],
        dir.path().join("up.log"),
    );
    let channel = ready(addr, &[&up]).await;
    let mut api = Clients::new(channel.clone(), channel);
    let clips = corpus(4);
    let mut ids = Vec::new();
    for (path, meta) in &clips {
        ids.push(
            upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
                .await
                .unwrap()
                .track_id,
        );
    }
    let listens = (0..3)
        .map(|i| ListenRequest {
            user_id: "bo".into(),
            track_id: ids[i].clone(),
            timestamp_ms: now_ms() - 10_000 + i as i64,
            play_fraction: 1.0,
            event_id: format!("bo-{i}"),
            ..Default::default()
        })
        .collect();
    // Listens need their tracks embedded first (ingest refuses unknown tracks).
    let cat = api.cat.clone();
    eventually(60, "4 tracks embedded", &[&up], || {
        let mut cat = cat.clone();
        async move {
            (cat.list_tracks(ListTracksRequest::default())
                .await
                .ok()?
                .into_inner()
                .tracks
                .len()
                == 4)
                .then_some(())
        }
    })
    .await;
    assert_eq!(
        api.ingest
            .record_listens(ListenBatch { listens })
            .await
            .unwrap()
            .into_inner()
            .accepted,
        3
    );
    let listened = |cat: &CatalogClient<Channel>, want: u64| {
        let cat = cat.clone();
        move || {
            let mut cat = cat.clone();
            async move {
                let s = cat
                    .get_user_state(GetUserStateRequest {
                        user_id: "bo".into(),
                    })
                    .await
                    .ok()?
                    .into_inner();
                (s.listen_count == want).then_some(())
            }
        }
    };
    eventually(30, "3 listens aggregated", &[&up], listened(&api.cat, 3)).await;

    // A clean stop, then a SIGKILL: each time everything is still there afterwards.
    for how in ["SIGTERM", "SIGKILL"] {
        if how == "SIGTERM" {
            let status = up.terminate();
            assert!(status.success(), "exit {status}\n{}", up.tail());
        } else {
            up.kill9();
        }
        up.restart();
        let channel = ready(addr, &[&up]).await;
        api = Clients::new(channel.clone(), channel);
        let tracks = api
            .cat
            .list_tracks(ListTracksRequest::default())
            .await
            .unwrap()
            .into_inner()
            .tracks;
        assert_eq!(tracks.len(), 4, "after {how}");
        eventually(
            30,
            &format!("state of bo after {how}"),
            &[&up],
            listened(&api.cat, 3),
        )
        .await;
        let rec = api
            .rec
            .recommend(RecommendRequest {
                user_id: "bo".into(),
                k: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            rec.tracks[0].track_id, ids[3],
            "the one unheard track, after {how}"
        );
    }
    assert!(up.terminate().success());
}
