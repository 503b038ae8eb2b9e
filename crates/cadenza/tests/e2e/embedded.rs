//! `cadenza up`: all four services in one process on the in-process log and one qdrant-edge
//! index. The two-tastes scenario holds, and everything ingested and listened to survives a
//! clean stop and a SIGKILL (also one in the middle of aggregating a replay): after each
//! restart the same listeners get the same answers. `cadenza rebuild` rebuilds the index from
//! the log identical to the live one, and serves the same answers after the index is lost.

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

    // The evaluation's synthetic listeners replayed through the API: every listen accepted,
    // and each listener's state ends up counting exactly what the generator produced for them.
    let catalogue = cadenza_testkit::repo_root().join("data/corpus/tiny/catalogue.jsonl");
    let out = std::process::Command::new(binary("cadenza"))
        .args([
            "replay",
            "--server",
            &format!("http://{addr}"),
            "--users",
            "6",
        ])
        .arg("--catalogue")
        .arg(&catalogue)
        .args(["--rate", "2000", "--batch", "50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 refused"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cat = cadenza_eval::catalogue::Catalogue::load(&catalogue).unwrap();
    let config = cadenza_eval::listeners::ListenerConfig {
        n_users: 6,
        seed: 1,
        ..Default::default()
    };
    let mut want = std::collections::BTreeMap::<String, u64>::new();
    for e in cadenza_eval::listeners::ListenGenerator::new(&cat, config) {
        *want.entry(e.user_id).or_default() += 1;
    }
    assert_eq!(want.len(), 6);
    // Crash mid-write: every replayed listen is in the log, aggregation is still working
    // through them. SIGKILL now; the restarted process finishes them, none lost or doubled.
    up.kill9();
    up.restart();
    let channel = ready(addr, &[&up]).await;
    api = Clients::new(channel.clone(), channel);
    for (user, n) in &want {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let got = api
                .cat
                .get_user_state(GetUserStateRequest {
                    user_id: user.clone(),
                })
                .await
                .map(|s| s.into_inner().listen_count);
            if got.as_ref().ok() == Some(n) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{user}: {got:?} listens after 60 s, the replay sent {n}\n{}",
                up.tail()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let served = recommendations(&mut api).await;
    assert!(up.terminate().success());

    // Everything derived is a replay of the log: the rebuilt index equals the live one...
    let rebuild = |extra: &[&str]| {
        let out = std::process::Command::new(binary("cadenza"))
            .args(["rebuild", "--data-dir", &data])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "rebuild {extra:?}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let report = rebuild(&["--check"]);
    assert!(report.contains("  identical"), "{report}");
    assert!(
        report.contains(&format!(
            "tracks: {n} rebuilt, {n} live, {n} identical",
            n = clips.len()
        )),
        "{report}"
    );
    // ...and when the index is lost, the rebuilt one serves the same answers.
    std::fs::remove_dir_all(dir.path().join("data/index")).unwrap();
    rebuild(&["--replace", "--force"]);
    up.restart();
    let channel = ready(addr, &[&up]).await;
    api = Clients::new(channel.clone(), channel);
    wait_tracks(&api, clips.len(), &[&up]).await;
    for (user, n) in &want {
        let s = api
            .cat
            .get_user_state(GetUserStateRequest {
                user_id: user.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.listen_count, *n, "{user} after the rebuild");
    }
    assert_eq!(
        recommendations(&mut api).await,
        served,
        "recommendations changed by the rebuild"
    );
    assert!(up.terminate().success());
}

/// The top 10 of both tastes' listeners and of every synthetic listener.
async fn recommendations(api: &mut Clients) -> Vec<(String, Vec<String>)> {
    let users = ["violinist", "chorister"]
        .map(str::to_owned)
        .into_iter()
        .chain((0..6).map(|u| format!("u{u:05}")));
    let mut out = Vec::new();
    for user in users {
        let rec = api
            .rec
            .recommend(RecommendRequest {
                user_id: user.clone(),
                k: 10,
                ..Default::default()
            })
            .await
            .map(|r| {
                r.into_inner()
                    .tracks
                    .into_iter()
                    .map(|t| t.track_id)
                    .collect()
            })
            .unwrap_or_else(|e| panic!("recommend for {user}: {e}"));
        out.push((user, rec));
    }
    out
}
