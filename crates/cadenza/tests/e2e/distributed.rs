//! The four services as four processes over a real Apache Kafka broker (KRaft, jars from Maven
//! Central, started by the test kit), each consumer with its own qdrant-edge index fed from
//! the topics. Uploads become recommendable, bad input is refused or dead-lettered without
//! touching anything else; session aggregation killed with SIGKILL mid-stream loses no
//! listen and counts none twice, feature extraction killed with a backlog embeds every
//! track all the same, ingest killed with an upload in flight loses none (what it
//! acknowledged is embedded, what it did not is retried, and counts once), and ranking
//! killed mid-replay serves every final state after restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cadenza_bus::{
    DEAD_LETTER_TOPIC, EventBus, HEADER_REASON, HEADER_STAGE, KafkaBus, KafkaConfig, StartFrom,
    SubscribeOpts,
};
use cadenza_proto::v1::{
    GetTrackRequest, GetUserStateRequest, ListenBatch, ListenRequest, RecommendRequest,
    TrackMetadata,
};
use tonic::Code;

use super::*;

fn listen(user: &str, track: &str, i: i64) -> ListenRequest {
    ListenRequest {
        user_id: user.into(),
        track_id: track.into(),
        timestamp_ms: now_ms() - 3_600_000 + i * 1000,
        play_fraction: 1.0,
        skipped: false,
        event_id: format!("{user}-{i}"),
        session_hint: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_services_over_kafka() {
    if std::env::var_os("CADENZA_SKIP_KAFKA").is_some() {
        eprintln!("SKIPPED: distributed end-to-end test (CADENZA_SKIP_KAFKA is set)");
        return;
    }
    let broker = cadenza_testkit::KafkaBroker::start().expect("Apache Kafka broker");
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs").display().to_string();
    let (ingest_addr, ranking_addr) = (free_addr(), free_addr());
    let common = |data: &str, grpc: SocketAddr| {
        vec![
            ("CADENZA_KAFKA_BROKERS", broker.bootstrap()),
            ("CADENZA_TOPIC_PARTITIONS", "3".to_owned()),
            ("CADENZA_INSTANCE_ID", "e2e".to_owned()),
            (
                "CADENZA_DATA_DIR",
                dir.path().join(data).display().to_string(),
            ),
            ("CADENZA_BLOB_DIR", blobs.clone()),
            ("CADENZA_GRPC_ADDR", grpc.to_string()),
            ("CADENZA_METRICS_ADDR", free_addr().to_string()),
            ("CADENZA_MODEL_THREADS", "1".to_owned()),
        ]
    };
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let mut ingest = Proc::start(
        "ingest",
        binary("cadenza-ingest"),
        &[],
        &common("ingest", ingest_addr),
        log("ingest"),
    );
    let fe_addr = free_addr();
    let mut fe = Proc::start(
        "feature-extraction",
        binary("cadenza-feature-extraction"),
        &[],
        &common("fe", fe_addr),
        log("fe"),
    );
    let sa_addr = free_addr();
    let mut sa = Proc::start(
        "session-aggregation",
        binary("cadenza-session-aggregation"),
        &[],
        &common("sa", sa_addr),
        log("sa"),
    );
    let mut ranking = Proc::start(
        "ranking",
        binary("cadenza-ranking"),
        &[],
        &common("ranking", ranking_addr),
        log("ranking"),
    );
    let procs = [&ingest, &fe, &sa, &ranking];
    let mut api = Clients::new(
        ready(ingest_addr, &procs).await,
        ready(ranking_addr, &procs).await,
    );
    ready(fe_addr, &procs).await;
    ready(sa_addr, &procs).await;

    // Uploads: each becomes visible to ranking (through Kafka and its own index).
    let clips = corpus(usize::MAX);
    let mut ids = Vec::new();
    let mut freshness = Vec::new();
    for (path, meta) in &clips[..6] {
        let t0 = Instant::now();
        let r = upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
            .await
            .unwrap();
        assert_eq!(r.track_id, meta.external_id);
        let mut cat = api.cat.clone();
        let id = r.track_id.clone();
        eventually(60, &format!("track {id} recommendable"), &procs, || {
            let (mut cat, id) = (cat.clone(), id.clone());
            async move { cat.get_track(GetTrackRequest { track_id: id }).await.ok() }
        })
        .await;
        cat.get_track(GetTrackRequest {
            track_id: r.track_id.clone(),
        })
        .await
        .unwrap();
        freshness.push(t0.elapsed());
        ids.push(r.track_id);
    }
    eprintln!("upload → recommendable (distributed, Kafka, per-process indexes): {freshness:?}");
    // Feature extraction is killed with SIGKILL while the rest are uploaded (with a backlog
    // of tracks to embed) and restarted: every track is embedded all the same. Before that,
    // ingest is killed with SIGKILL 0-25 ms into an upload: if it answered, the track must be
    // embedded; if not, the client retries after the restart, and the track is there once
    // (its id is the catalogue's, so a retry of an upload that did land is the same track).
    let rest = &clips[6..];
    for (i, (path, meta)) in rest.iter().enumerate() {
        if i == rest.len() / 4 {
            let delay = Duration::from_millis(random_below(25));
            let (mut client, bytes, m) = (
                api.ingest.clone(),
                std::fs::read(path).unwrap(),
                meta.clone(),
            );
            let inflight = tokio::spawn(async move { upload(&mut client, bytes, m).await });
            tokio::time::sleep(delay).await;
            ingest.kill9();
            let first = inflight.await.unwrap();
            eprintln!(
                "SIGKILL to ingest {delay:?} into upload {i}: {}",
                match &first {
                    Ok(_) => "acknowledged before the kill".to_owned(),
                    Err(e) => format!("failed ({:?}), retried after the restart", e.code()),
                }
            );
            ingest.restart();
            let procs = [&ingest, &fe, &sa, &ranking];
            api.ingest = cadenza_proto::v1::ingest_client::IngestClient::new(
                ready(ingest_addr, &procs).await,
            );
            if first.is_err() {
                let r = upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
                    .await
                    .unwrap();
                assert_eq!(r.track_id, meta.external_id);
            }
            continue;
        }
        if i == rest.len() / 2 {
            eprintln!(
                "SIGKILL to feature extraction after {i} of {} uploads",
                rest.len()
            );
            fe.kill9();
        }
        upload(&mut api.ingest, std::fs::read(path).unwrap(), meta.clone())
            .await
            .unwrap();
    }
    fe.restart();
    let procs = [&ingest, &fe, &sa, &ranking];
    wait_tracks(&api, clips.len(), &procs).await;
    two_tastes(&mut api, &clips, &procs).await;

    // Bad uploads are refused and nothing else changes.
    let err = upload(
        &mut api.ingest,
        b"RIFF\x00\x00 not really a wav".to_vec(),
        TrackMetadata {
            filename: "bad.wav".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("bad.wav: not usable audio"),
        "{err:?}"
    );

    // Listens; an unknown track is refused (and dead-lettered); a malformed event written
    // straight to the topic is dead-lettered by session aggregation.
    let batch = ListenBatch {
        listens: vec![
            listen("ana", &ids[0], 0),
            listen("ana", &ids[1], 1),
            listen("ana", "no-such-track", 2),
        ],
    };
    let ack = api.ingest.record_listens(batch).await.unwrap().into_inner();
    assert_eq!((ack.accepted, ack.rejected), (2, 1));
    assert!(
        ack.items[2]
            .reason
            .contains("unknown track id `no-such-track`"),
        "{ack:?}"
    );
    let bus = KafkaBus::new(KafkaConfig::new(broker.bootstrap())).unwrap();
    bus.publish(
        cadenza_proto::topics::LISTEN,
        b"ana",
        b"\xff\xfe garbage".to_vec(),
        vec![],
    )
    .await
    .unwrap();
    let ack = api
        .ingest
        .record_listens(ListenBatch {
            listens: vec![listen("ana", &ids[2], 3)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.accepted, 1);

    let state = |want: u64| {
        let cat = api.cat.clone();
        move || {
            let mut cat = cat.clone();
            async move {
                let s = cat
                    .get_user_state(GetUserStateRequest {
                        user_id: "ana".into(),
                    })
                    .await
                    .ok()?
                    .into_inner();
                (s.listen_count == want).then_some(s)
            }
        }
    };
    let s = eventually(60, "3 listens of ana aggregated", &procs, state(3)).await;
    assert_eq!(s.recent_track_ids, ids[..3]);

    let mut dlq = bus
        .subscribe(
            "e2e-dlq-probe",
            &[DEAD_LETTER_TOPIC],
            SubscribeOpts {
                from: StartFrom::Earliest,
            },
        )
        .await
        .unwrap();
    let mut stages = Vec::new();
    while stages.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(30), dlq.next())
            .await
            .expect("dead letters")
            .unwrap();
        let h = |k| String::from_utf8_lossy(m.header(k).unwrap_or_default()).into_owned();
        stages.push((h(HEADER_STAGE), h(HEADER_REASON)));
    }
    stages.sort();
    assert_eq!(stages[0].0, "ingest");
    assert!(stages[0].1.contains("no-such-track"), "{stages:?}");
    assert_eq!(stages[1].0, "session-aggregation");
    assert!(
        stages[1].1.contains("not a ListenRecorded protobuf"),
        "{stages:?}"
    );

    // Recommendations leave out what ana heard and explain themselves.
    let rec = api
        .rec
        .recommend(RecommendRequest {
            user_id: "ana".into(),
            k: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rec.tracks.len(), 3);
    for t in &rec.tracks {
        assert!(
            !ids[..3].contains(&t.track_id),
            "{:?} was heard",
            t.track_id
        );
        assert!(
            t.explanation
                .as_ref()
                .unwrap()
                .text
                .starts_with("because you listened to"),
            "{t:?}"
        );
    }

    // SIGKILL session aggregation between two bursts: nothing lost, nothing counted twice.
    let burst = |from: i64| ListenBatch {
        listens: (from..from + 10)
            .map(|i| listen("ana", &ids[(i % 6) as usize], i))
            .collect(),
    };
    assert_eq!(
        api.ingest
            .record_listens(burst(10))
            .await
            .unwrap()
            .into_inner()
            .accepted,
        10
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    sa.kill9();
    assert_eq!(
        api.ingest
            .record_listens(burst(20))
            .await
            .unwrap()
            .into_inner()
            .accepted,
        10
    );
    sa.restart();
    let procs = [&ingest, &fe, &sa, &ranking];
    eventually(
        90,
        "all 23 listens aggregated after the SIGKILL",
        &procs,
        state(23),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = api
        .cat
        .get_user_state(GetUserStateRequest {
            user_id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.listen_count, 23, "a redelivered listen was counted twice");
    assert_eq!(s.play_counts.values().sum::<u32>(), 23);

    // The evaluation's synthetic listeners replayed straight onto Kafka's listen topic (no
    // ingest in between): session aggregation counts exactly what the generator produced.
    let catalogue = cadenza_testkit::repo_root().join("data/corpus/tiny/catalogue.jsonl");
    // Session aggregation is killed with SIGKILL at a random point of it and restarted.
    let replay = std::process::Command::new(binary("cadenza"))
        .args(["replay", "--kafka", &broker.bootstrap(), "--users", "12"])
        .arg("--catalogue")
        .arg(&catalogue)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let at_ms = 300 + random_below(1500);
    // Ranking too, at another point: its own index follows the user-state topic, so after
    // the restart it must serve every listener's final state (checked below through it).
    let ranking_at_ms = 200 + (at_ms * 7) % 1500;
    eprintln!(
        "replay: SIGKILL to session aggregation after {at_ms} ms, to ranking after {ranking_at_ms} ms"
    );
    let mut kills = [(at_ms, "sa"), (ranking_at_ms, "ranking")];
    kills.sort();
    let t0 = Instant::now();
    for (ms, who) in kills {
        tokio::time::sleep(Duration::from_millis(ms).saturating_sub(t0.elapsed())).await;
        let p = if who == "sa" { &mut sa } else { &mut ranking };
        p.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        p.restart();
    }
    let procs = [&ingest, &fe, &sa, &ranking];
    let out = replay.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 refused"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cat = cadenza_eval::catalogue::Catalogue::load(&catalogue).unwrap();
    let config = cadenza_eval::listeners::ListenerConfig {
        n_users: 12,
        seed: 1,
        ..Default::default()
    };
    let mut want = std::collections::BTreeMap::<String, u64>::new();
    for e in cadenza_eval::listeners::ListenGenerator::new(&cat, config) {
        *want.entry(e.user_id).or_default() += 1;
    }
    assert_eq!(want.len(), 12);
    for (user, n) in want {
        let cat = api.cat.clone();
        eventually(
            60,
            &format!("{n} replayed listens of {user} aggregated"),
            &procs,
            move || {
                let (mut cat, user) = (cat.clone(), user.clone());
                async move {
                    let s = cat
                        .get_user_state(GetUserStateRequest { user_id: user })
                        .await
                        .ok()?
                        .into_inner();
                    (s.listen_count == n).then_some(())
                }
            },
        )
        .await;
    }

    // Every state is a replay of the listen topic: rebuilt from Kafka, it equals the last
    // snapshot every replica materialised (so nothing was lost or doubled by the SIGKILLs).
    let scratch = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(binary("cadenza"))
        .args(["rebuild", "--kafka-brokers", &broker.bootstrap(), "--check"])
        .arg("--data-dir")
        .arg(scratch.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("  identical"),
        "rebuild: {}\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // Graceful shutdown: every process exits 0 on SIGTERM.
    let mut ingest = ingest;
    for p in [&mut ingest, &mut fe, &mut sa, &mut ranking] {
        let status = p.terminate();
        assert!(
            status.success(),
            "{} exited with {status}\n{}",
            p.name,
            p.tail()
        );
    }
}

/// A number in `0..n` that differs from run to run (where a kill lands), from the clock.
fn random_below(n: u64) -> u64 {
    u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos(),
    ) % n
}
