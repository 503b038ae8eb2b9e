//! `cadenza up`: all four services in one process on the in-process log and one qdrant-edge
//! index. The two-tastes scenario holds, and everything ingested and listened to survives a
//! clean stop and a SIGKILL: after each restart the same listeners get the same answers.

use cadenza_proto::v1::{GetUserStateRequest, RecommendRequest};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_two_tastes_and_survives_restarts() {
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
    let clips = corpus(usize::MAX);
    for (path, meta) in &clips {
        upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
            .await
            .unwrap();
    }
    wait_tracks(&api, clips.len(), &[&up]).await;
    let tops = two_tastes(&mut api, &clips, &[&up]).await;

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
        wait_tracks(&api, clips.len(), &[&up]).await;
        for (user, top) in ["violinist", "chorister"].iter().zip(&tops) {
            let s = api
                .cat
                .get_user_state(GetUserStateRequest {
                    user_id: (*user).into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(s.listen_count, PLAYS as u64, "{user} after {how}");
            let rec = api
                .rec
                .recommend(RecommendRequest {
                    user_id: (*user).into(),
                    k: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let ids: Vec<String> = rec.tracks.into_iter().map(|t| t.track_id).collect();
            assert_eq!(
                &ids, top,
                "{user}'s recommendations changed across a {how} restart"
            );
        }
    }
    assert!(up.terminate().success());
}
