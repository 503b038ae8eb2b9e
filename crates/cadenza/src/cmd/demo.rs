//! `cadenza demo`: the main job on embedded defaults, end to end. Starts the whole system in
//! this process (as `cadenza up`), uploads a corpus through the gRPC API, waits for feature
//! extraction to embed every track, plays a few tracks as a listener, and prints what the
//! recommender answers — with a check of whether the answer follows the listener's taste
//! better than chance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use cadenza_proto::v1::{
    GetUserStateRequest, ListenBatch, ListenRequest, RecommendRequest, SimilarRequest,
    TrackMetadata,
};
use cadenza_svc::catalog::TRACKS;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::client::{self, ClientArgs};
use super::up::{System, UpArgs};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A corpus made by `make corpus` (its `audio/` and `catalogue.jsonl` are used), or any
    /// folder of audio files.
    #[arg(default_value = "data/corpus/tiny")]
    pub corpus: PathBuf,
    /// Where the demo system keeps its state (emptied first).
    #[arg(long, default_value = "data/demo")]
    pub data_dir: PathBuf,
    /// Address of the demo's gRPC API (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub grpc_addr: std::net::SocketAddr,
    /// How many tracks the demo listener plays.
    #[arg(long, default_value_t = 4)]
    pub plays: usize,
    /// Keep serving after the demo (Ctrl-C stops).
    #[arg(long)]
    pub serve: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(demo(args))
}

fn bar(len: u64, what: &str) -> ProgressBar {
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} [{{elapsed}}]"))
            .expect("valid template"),
    )
}

async fn demo(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    let audio_dir = if args.corpus.join("audio").is_dir() {
        args.corpus.join("audio")
    } else {
        args.corpus.clone()
    };
    let files = client::audio_files(std::slice::from_ref(&audio_dir));
    anyhow::ensure!(
        !files.is_empty(),
        "no audio under {} (make one with `make corpus PRESET=tiny`)",
        audio_dir.display()
    );
    let catalogue_path = args.corpus.join("catalogue.jsonl");
    let catalogue = if catalogue_path.is_file() {
        client::read_catalogue(&catalogue_path)?
    } else {
        HashMap::new()
    };
    if args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("cannot empty {}", args.data_dir.display()))?;
    }
    let t0 = Instant::now();
    let system = System::start(&UpArgs::local(args.data_dir.clone(), args.grpc_addr)).await?;
    eprintln!(
        "cadenza is up in this process: gRPC on {}, event log + qdrant-edge index in {}",
        system.addr,
        args.data_dir.display()
    );
    let mut clients = ClientArgs {
        server: format!("http://{}", system.addr),
        token: None,
    }
    .connect()
    .await?;

    // 1. Upload through the API, as any client would.
    let up = bar(files.len() as u64, "uploaded");
    let mut tracks: Vec<(String, TrackMetadata)> = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = catalogue.get(&name).cloned().unwrap_or_default();
        match client::upload(&mut clients, f, meta.clone()).await {
            Ok(r) => tracks.push((r.track_id, meta)),
            Err(e) => up.println(format!("refused {}: {e:#}", f.display())),
        }
        up.inc(1);
    }
    up.finish();

    // 2. Feature extraction runs behind the API; wait until every track is in the index.
    let embedded = bar(tracks.len() as u64, "embedded");
    let deadline = Instant::now() + Duration::from_secs(30 + 5 * tracks.len() as u64);
    loop {
        let n = system.index.count(TRACKS).await?;
        embedded.set_position(n);
        if n >= tracks.len() as u64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {} tracks embedded in time",
            tracks.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    embedded.finish();

    // 3. A listener with a clear taste: the most common lead instrument of the corpus.
    let mut by_instrument: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, m) in &tracks {
        by_instrument
            .entry(m.lead_instrument.as_str())
            .or_default()
            .push(id);
    }
    let (taste, liked) = by_instrument
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .max_by_key(|(k, v)| (v.len(), std::cmp::Reverse(**k)))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .unwrap_or_else(|| {
            (
                String::new(),
                tracks.iter().map(|(id, _)| id.as_str()).collect(),
            )
        });
    let played: Vec<String> = liked
        .iter()
        .take(args.plays.min(liked.len().saturating_sub(1)).max(1))
        .map(|s| s.to_string())
        .collect();
    let now = client::now_ms();
    let listens = played
        .iter()
        .enumerate()
        .map(|(i, t)| ListenRequest {
            user_id: "demo-listener".into(),
            track_id: t.clone(),
            timestamp_ms: now - ((played.len() - i) as i64) * 40_000,
            play_fraction: 1.0,
            skipped: false,
            event_id: format!("demo-{i}"),
            session_hint: String::new(),
        })
        .collect();
    let ack = clients
        .ingest
        .record_listens(ListenBatch { listens })
        .await
        .map_err(client::status)?
        .into_inner();
    anyhow::ensure!(ack.rejected == 0, "listens refused: {:?}", ack.items);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = clients
            .catalog
            .get_user_state(GetUserStateRequest {
                user_id: "demo-listener".into(),
            })
            .await;
        if state.is_ok_and(|s| s.into_inner().listen_count >= played.len() as u64) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the listens were not aggregated in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let label = |id: &str| {
        tracks
            .iter()
            .find(|(t, _)| t == id)
            .map(|(_, m)| format!("{} — {} ({})", m.title, m.composer, m.ensemble))
            .unwrap_or_else(|| id.to_owned())
    };
    println!(
        "\ndemo-listener played {} tracks led by {}:",
        played.len(),
        if taste.is_empty() { "anything" } else { &taste }
    );
    for t in &played {
        println!("  {t}  {}", label(t));
    }

    // 4. Recommendations, as `cadenza recommend` shows them.
    let k = 5.min(tracks.len() - played.len()) as u32;
    let reply = clients
        .recommender
        .recommend(RecommendRequest {
            user_id: "demo-listener".into(),
            k,
            strategy: "knn".into(),
            ..Default::default()
        })
        .await
        .map_err(client::status)?
        .into_inner();
    println!(
        "\nrecommended for demo-listener (strategy {}, model {}):",
        reply.strategy, reply.model_version
    );
    client::print_reply(&reply, false);
    if !taste.is_empty() {
        let hits = reply
            .tracks
            .iter()
            .filter(|t| {
                t.metadata
                    .as_ref()
                    .is_some_and(|m| m.lead_instrument == taste)
            })
            .count();
        let unheard = tracks.len() - played.len();
        let base = (liked.len() - played.len()) as f64 / unheard as f64;
        println!(
            "\n{hits} of {} recommendations are led by {taste}; choosing at random from the {unheard} unheard tracks would give {:.1}",
            reply.tracks.len(),
            base * reply.tracks.len() as f64
        );
    }
    let seed = &played[0];
    let similar = clients
        .recommender
        .similar_tracks(SimilarRequest {
            track_id: seed.clone(),
            k: 3,
            ..Default::default()
        })
        .await
        .map_err(client::status)?
        .into_inner();
    println!("\nsimilar to {}:", label(seed));
    client::print_reply(&similar, false);
    println!(
        "\n{} tracks ingested, embedded and ranked in {:.1} s",
        tracks.len(),
        t0.elapsed().as_secs_f64()
    );

    if args.serve {
        system.shutdown.on_signals();
        eprintln!(
            "serving on {} until Ctrl-C (try `cadenza recommend --server http://{} --user demo-listener`)",
            system.addr, system.addr
        );
        system.shutdown.wait().await;
    }
    system.stop().await?;
    Ok(std::process::ExitCode::SUCCESS)
}
