//! What the end-to-end tests and the freshness benchmark share: starting the real binaries,
//! waiting for readiness, gRPC clients, the corpus, the two-tastes scenario.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cadenza_proto::v1::catalog_client::CatalogClient;
use cadenza_proto::v1::ingest_client::IngestClient;
use cadenza_proto::v1::recommender_client::RecommenderClient;
use cadenza_proto::v1::{
    GetUserStateRequest, IngestReply, ListTracksRequest, ListenBatch, ListenRequest,
    RecommendRequest, TrackMetadata, UploadChunk, upload_chunk,
};
use tonic::transport::Channel;

/// A binary of this workspace's target dir (next to the `cadenza` binary cargo built).
pub fn binary(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_cadenza")).parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first (`make test` does)",
        path.display()
    );
    path
}

pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A child process that is killed when dropped; its output goes to `log`.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    cmd: Vec<(String, String)>,
    bin: PathBuf,
    args: Vec<String>,
    pub log: PathBuf,
}

impl Proc {
    pub fn start(
        name: &str,
        bin: PathBuf,
        args: &[&str],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> Proc {
        let mut p = Proc {
            name: name.to_owned(),
            child: None,
            cmd: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            bin,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            log,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .args(&self.args)
            .envs(self.cmd.iter().cloned())
            .env("CADENZA_LOG", "info")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                c.kill().unwrap();
                panic!(
                    "{} did not stop within 30 s of SIGTERM\n{}",
                    self.name,
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop {} first", self.name);
        self.spawn();
    }

    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} (last lines) ---\n{}",
            self.name,
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Poll `f` until it returns `Some`, or fail after `secs` with `what` and the processes' logs.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, procs: &[&Proc], mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = procs.iter().map(|p| p.tail()).collect();
            panic!("{what}: not within {secs} s\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A channel once the server's readiness check answers SERVING.
pub async fn ready(addr: SocketAddr, procs: &[&Proc]) -> Channel {
    eventually(60, &format!("readiness of {addr}"), procs, || async move {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .ok()?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "readiness".into(),
            })
            .await
            .ok()?;
        (r.into_inner().status
            == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
            .then_some(channel)
    })
    .await
}

#[derive(Debug)]
pub struct Clients {
    pub ingest: IngestClient<Channel>,
    pub rec: RecommenderClient<Channel>,
    pub cat: CatalogClient<Channel>,
}

impl Clients {
    pub fn new(ingest: Channel, ranking: Channel) -> Clients {
        Clients {
            ingest: IngestClient::new(ingest),
            rec: RecommenderClient::new(ranking.clone()),
            cat: CatalogClient::new(ranking),
        }
    }
}

/// The tiny corpus's clips with their catalogue metadata (`make test` builds the corpus).
pub fn corpus(n: usize) -> Vec<(PathBuf, TrackMetadata)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/corpus/tiny");
    let text = std::fs::read_to_string(root.join("catalogue.jsonl"))
        .expect("the tiny corpus: `make corpus PRESET=tiny` (make test builds it)");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: HashMap<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let s = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let path = root.join(s("audio_path"));
        out.push((
            path.clone(),
            TrackMetadata {
                external_id: s("track_id"),
                title: s("title"),
                composer: s("composer"),
                lead_instrument: s("lead_instrument"),
                ensemble: s("ensemble"),
                filename: path.file_name().unwrap().to_string_lossy().into_owned(),
                ..Default::default()
            },
        ));
    }
    out.truncate(n);
    out
}

pub async fn upload(
    client: &mut IngestClient<Channel>,
    bytes: Vec<u8>,
    meta: TrackMetadata,
) -> Result<IngestReply, tonic::Status> {
    let mut chunks = vec![UploadChunk {
        chunk: Some(upload_chunk::Chunk::Metadata(meta)),
    }];
    chunks.extend(bytes.chunks(256 * 1024).map(|c| UploadChunk {
        chunk: Some(upload_chunk::Chunk::Data(c.to_vec())),
    }));
    client
        .upload_track(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Wait until ranking lists `n` tracks.
pub async fn wait_tracks(api: &Clients, n: usize, procs: &[&Proc]) {
    let cat = api.cat.clone();
    eventually(
        120,
        &format!("{n} tracks embedded and listed"),
        procs,
        || {
            let mut cat = cat.clone();
            async move {
                let page = cat
                    .list_tracks(ListTracksRequest {
                        page_size: 500,
                        page_token: String::new(),
                    })
                    .await
                    .ok()?;
                (page.into_inner().tracks.len() == n).then_some(())
            }
        },
    )
    .await;
}

/// Wait until `user` has `want` listens aggregated.
pub async fn wait_listens(api: &Clients, user: &str, want: u64, procs: &[&Proc]) {
    let cat = api.cat.clone();
    eventually(
        90,
        &format!("{want} listens of {user} aggregated"),
        procs,
        || {
            let (mut cat, user) = (cat.clone(), user.to_owned());
            async move {
                let s = cat
                    .get_user_state(GetUserStateRequest { user_id: user })
                    .await
                    .ok()?
                    .into_inner();
                (s.listen_count == want).then_some(())
            }
        },
    )
    .await;
}

/// Tracks each listener of [`two_tastes`] plays: few, as in a small archive (the tiny corpus
/// has 9 choir tracks; the chorister's top 10 needs voices left to find).
pub const PLAYS: usize = 3;

/// Two listeners with opposite tastes, chosen from the catalogue's metadata: one plays only
/// solo-violin tracks, the other only choir tracks. Each one's top 10 must be dominated by
/// their own kind, measured from metadata by instrument family (bowed strings: violin- or
/// string-led; voices: voice-led), which MusiCNN hears apart while a violin and a string
/// quartet sound alike to it. Returns both top-10 lists (track ids).
pub async fn two_tastes(
    api: &mut Clients,
    tracks: &[(PathBuf, TrackMetadata)],
    procs: &[&Proc],
) -> Vec<Vec<String>> {
    let family = |lead: &str| match lead {
        "violin" | "strings" | "viola" | "cello" => "bowed strings",
        "voice" => "voices",
        _ => "other",
    };
    let kind: HashMap<String, &str> = tracks
        .iter()
        .map(|(_, m)| (m.external_id.clone(), family(&m.lead_instrument)))
        .collect();
    let mut tops = Vec::new();
    for (user, ensemble, taste, other) in [
        ("violinist", "solo violin", "bowed strings", "voices"),
        ("chorister", "choir", "voices", "bowed strings"),
    ] {
        let played: Vec<&str> = tracks
            .iter()
            .filter(|(_, m)| m.ensemble == ensemble)
            .map(|(_, m)| m.external_id.as_str())
            .take(PLAYS)
            .collect();
        assert_eq!(
            played.len(),
            PLAYS,
            "the tiny corpus has at least {PLAYS} {ensemble} tracks"
        );
        let listens = played
            .iter()
            .enumerate()
            .map(|(i, t)| ListenRequest {
                user_id: user.into(),
                track_id: (*t).into(),
                timestamp_ms: now_ms() - 600_000 + i as i64 * 60_000,
                play_fraction: 1.0,
                event_id: format!("{user}-{i}"),
                ..Default::default()
            })
            .collect();
        let ack = api
            .ingest
            .record_listens(ListenBatch { listens })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ack.accepted as usize, PLAYS, "{ack:?}");
        wait_listens(api, user, PLAYS as u64, procs).await;
        let rec = api
            .rec
            .recommend(RecommendRequest {
                user_id: user.into(),
                k: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<String> = rec.tracks.iter().map(|t| t.track_id.clone()).collect();
        let count = |k: &str| {
            ids.iter()
                .filter(|t| kind.get(*t).is_some_and(|x| *x == k))
                .count()
        };
        let (own, theirs) = (count(taste), count(other));
        eprintln!(
            "{user} (played {ensemble}): top 10 has {own} {taste} and {theirs} {other} tracks"
        );
        assert_eq!(ids.len(), 10);
        assert!(
            ids.iter().all(|t| !played.contains(&t.as_str())),
            "heard tracks recommended: {ids:?}"
        );
        assert!(
            own >= 6 && own > theirs,
            "{user}'s top 10 is not dominated by {taste}: {own} vs {theirs} {other} ({ids:?})"
        );
        tops.push(ids);
    }
    tops
}
