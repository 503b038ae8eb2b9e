//! Talking to a running cadenza (`cadenza up`, or the distributed services): upload audio,
//! record listens, ask for recommendations. Plain gRPC clients; what they print is meant for
//! people (a table) or for scripts (`--json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use cadenza_proto::v1::catalog_client::CatalogClient;
use cadenza_proto::v1::ingest_client::IngestClient;
use cadenza_proto::v1::recommender_client::RecommenderClient;
use cadenza_proto::v1::{
    ContinueRequest, Filter, GetUserStateRequest, ListenRequest, RecommendReply, RecommendRequest,
    SimilarRequest, TrackMetadata, UploadChunk, upload_chunk,
};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Where the API is.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The cadenza gRPC endpoint.
    #[arg(long, env = "CADENZA_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Bearer token, when the server requires one.
    #[arg(long, env = "CADENZA_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

type Auth =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send + Sync>;

/// Authenticated gRPC clients of one endpoint.
pub struct Clients {
    pub ingest: IngestClient<InterceptedService<Channel, Auth>>,
    pub recommender: RecommenderClient<InterceptedService<Channel, Auth>>,
    pub catalog: CatalogClient<InterceptedService<Channel, Auth>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clients")
    }
}

fn auth(token: Option<String>) -> anyhow::Result<Auth> {
    let header: Option<MetadataValue<_>> = token
        .filter(|t| !t.is_empty())
        .map(|t| format!("Bearer {t}").parse())
        .transpose()
        .context("the token is not valid in a header")?;
    Ok(Box::new(move |mut req: tonic::Request<()>| {
        if let Some(h) = &header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }))
}

impl ClientArgs {
    pub async fn connect(&self) -> anyhow::Result<Clients> {
        let channel = Channel::from_shared(self.server.clone())
            .with_context(|| format!("--server {:?} is not a URL", self.server))?
            .connect()
            .await
            .with_context(|| {
                format!(
                    "cannot reach cadenza at {} (is `cadenza up` running?)",
                    self.server
                )
            })?;
        let limit = 64 * 1024 * 1024;
        Ok(Clients {
            ingest: IngestClient::with_interceptor(channel.clone(), auth(self.token.clone())?),
            recommender: RecommenderClient::with_interceptor(
                channel.clone(),
                auth(self.token.clone())?,
            )
            .max_decoding_message_size(limit),
            catalog: CatalogClient::with_interceptor(channel, auth(self.token.clone())?)
                .max_decoding_message_size(limit),
        })
    }
}

/// Connect to `client`'s endpoint and run `f` with the clients, on a runtime of its own (the
/// shape of every client subcommand).
fn with_clients<F>(client: &ClientArgs, f: F) -> anyhow::Result<std::process::ExitCode>
where
    F: AsyncFnOnce(&mut Clients) -> anyhow::Result<std::process::ExitCode>,
{
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut clients = client.connect().await?;
        f(&mut clients).await
    })
}

/// A gRPC failure as a sentence: the server's message is written for people.
pub fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", e.message(), e.code())
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Upload one file: metadata first, then 1 MiB chunks.
pub async fn upload(
    clients: &mut Clients,
    path: &Path,
    mut meta: TrackMetadata,
) -> anyhow::Result<cadenza_proto::v1::IngestReply> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.filename.is_empty() {
        meta.filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let mut chunks = vec![UploadChunk {
        chunk: Some(upload_chunk::Chunk::Metadata(meta)),
    }];
    chunks.extend(bytes.chunks(1 << 20).map(|c| UploadChunk {
        chunk: Some(upload_chunk::Chunk::Data(c.to_vec())),
    }));
    Ok(clients
        .ingest
        .upload_track(tokio_stream::iter(chunks))
        .await
        .map_err(status)?
        .into_inner())
}

/// Columns that become [`TrackMetadata`] fields; any other column goes to `extra`.
const KNOWN: [&str; 14] = [
    "track_id",
    "id",
    "external_id",
    "title",
    "composer",
    "era",
    "ensemble",
    "lead_instrument",
    "tempo_bpm",
    "key",
    "work_id",
    "audio_path",
    "filename",
    "path",
];

/// One catalogue record as metadata, and the file name it describes.
fn record_meta(
    get: &dyn Fn(&str) -> Option<String>,
    columns: &[String],
) -> (String, TrackMetadata) {
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| get(k).filter(|v| !v.is_empty()))
            .unwrap_or_default()
    };
    let file = Path::new(&first(&["audio_path", "filename", "file", "path"]))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extra = columns
        .iter()
        .filter(|c| !KNOWN.contains(&c.as_str()))
        .filter_map(|c| Some((c.clone(), get(c).filter(|v| !v.is_empty())?)))
        .collect();
    let meta = TrackMetadata {
        external_id: first(&["track_id", "external_id", "id"]),
        title: first(&["title"]),
        composer: first(&["composer"]),
        era: first(&["era"]),
        ensemble: first(&["ensemble"]),
        lead_instrument: first(&["lead_instrument"]),
        tempo_bpm: first(&["tempo_bpm"]).parse().unwrap_or(0.0),
        key: first(&["key"]),
        work_id: first(&["work_id"]),
        filename: file.clone(),
        extra,
    };
    (file, meta)
}

/// Metadata of a catalogue, by audio file name: a CSV with a header row, or JSON lines (as
/// `make corpus` writes both). The file is named by `audio_path`, `filename`, `file` or `path`;
/// `track_id`/`external_id`/`id` becomes the track id; other known columns fill the metadata
/// and the rest is kept as `extra`.
pub fn read_catalogue(path: &Path) -> anyhow::Result<HashMap<String, TrackMetadata>> {
    let mut out = HashMap::new();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let mut reader = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let columns: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            let get = |k: &str| {
                columns
                    .iter()
                    .position(|c| c == k)
                    .and_then(|p| row.get(p))
                    .map(str::to_owned)
            };
            let (file, meta) = record_meta(&get, &columns);
            out.insert(file, meta);
        }
        return Ok(out);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))?;
        let columns: Vec<String> = v.keys().cloned().collect();
        let get = |k: &str| {
            v.get(k).and_then(|x| match x {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
        };
        let (file, meta) = record_meta(&get, &columns);
        out.insert(file, meta);
    }
    Ok(out)
}

/// Audio files under `paths` (folders walked), sorted.
pub fn audio_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    const EXT: [&str; 8] = ["wav", "flac", "ogg", "mp3", "m4a", "aac", "aiff", "aif"];
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(
                walkdir::WalkDir::new(p)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.file_type().is_file())
                    .map(|e| e.into_path())
                    .filter(|f| {
                        f.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| EXT.contains(&e.to_ascii_lowercase().as_str()))
                    }),
            );
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Audio files or folders to upload.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// A catalogue giving each file's metadata, matched by file name: CSV with a header row
    /// (columns such as filename, track_id, title, composer, era, ensemble, lead_instrument,
    /// tempo_bpm, key; others are kept as extra) or JSON lines (`make corpus` writes both).
    #[arg(long, visible_alias = "catalogue")]
    pub metadata: Option<PathBuf>,
}

pub fn ingest(args: IngestArgs) -> anyhow::Result<std::process::ExitCode> {
    with_clients(&args.client, async |clients| {
        let catalogue = match &args.metadata {
            Some(c) => read_catalogue(c)?,
            None => HashMap::new(),
        };
        let files = audio_files(&args.paths);
        let bar = ProgressBar::new(files.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} uploaded {msg}")
                .expect("valid template"),
        );
        let mut failed = 0;
        for f in &files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let meta = catalogue.get(&name).cloned().unwrap_or_default();
            match upload(clients, f, meta).await {
                Ok(r) => bar.println(format!(
                    "{}\t{}{}",
                    r.track_id,
                    f.display(),
                    if r.duplicate {
                        "\t(already stored)"
                    } else {
                        ""
                    }
                )),
                Err(e) => {
                    failed += 1;
                    bar.println(format!("FAILED\t{}\t{e:#}", f.display()));
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        eprintln!(
            "{} uploaded, {failed} refused; embeddings follow within seconds",
            files.len() - failed
        );
        Ok(if failed == 0 {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        })
    })
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Listener id.
    #[arg(long)]
    pub user: String,
    /// Track ids listened to, in order (one event each, a second apart).
    #[arg(required = true)]
    pub tracks: Vec<String>,
    /// Share of each track played (0..1).
    #[arg(long, default_value_t = 1.0)]
    pub fraction: f32,
    /// Mark the listens as skips.
    #[arg(long)]
    pub skipped: bool,
}

pub fn listen(args: ListenArgs) -> anyhow::Result<std::process::ExitCode> {
    with_clients(&args.client, async |clients| {
        let n = args.tracks.len() as i64;
        for (i, t) in args.tracks.iter().enumerate() {
            let req = ListenRequest {
                user_id: args.user.clone(),
                track_id: t.clone(),
                timestamp_ms: now_ms() - (n - i as i64) * 1000,
                play_fraction: args.fraction,
                skipped: args.skipped,
                event_id: String::new(),
                session_hint: String::new(),
            };
            let ack = clients.ingest.record_listen(req).await.map_err(status)?;
            println!("{}\t{}\t{}", ack.into_inner().event_id, args.user, t);
        }
        Ok(std::process::ExitCode::SUCCESS)
    })
}

/// Filters shared by the recommendation commands.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only these ensembles (repeatable).
    #[arg(long)]
    pub ensemble: Vec<String>,
    /// Only these lead instruments (repeatable).
    #[arg(long)]
    pub instrument: Vec<String>,
    /// Only these eras (repeatable).
    #[arg(long)]
    pub era: Vec<String>,
    /// Only these composers (repeatable).
    #[arg(long)]
    pub composer: Vec<String>,
    /// Slowest tempo, BPM.
    #[arg(long)]
    pub min_tempo: Option<f32>,
    /// Fastest tempo, BPM.
    #[arg(long)]
    pub max_tempo: Option<f32>,
}

impl FilterArgs {
    fn to_proto(&self) -> Option<Filter> {
        let f = Filter {
            ensembles: self.ensemble.clone(),
            lead_instruments: self.instrument.clone(),
            eras: self.era.clone(),
            composers: self.composer.clone(),
            min_tempo_bpm: self.min_tempo.unwrap_or(0.0),
            max_tempo_bpm: self.max_tempo.unwrap_or(0.0),
        };
        (f != Filter::default()).then_some(f)
    }
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Listener id.
    #[arg(long)]
    pub user: String,
    /// How many tracks.
    #[arg(short, long, default_value_t = 10)]
    pub k: u32,
    /// knn (mean of history), multicentroid (one query per taste), popular (their own favourites).
    #[arg(long, default_value = "knn")]
    pub strategy: String,
    /// 0 = pure relevance … 1 = maximal variety (MMR re-ranking).
    #[arg(long, default_value_t = 0.0)]
    pub diversity: f32,
    /// Include tracks the listener already heard.
    #[arg(long)]
    pub include_heard: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SimilarArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The seed track.
    #[arg(long)]
    pub track: String,
    #[arg(short, long, default_value_t = 10)]
    pub k: u32,
    #[arg(long, default_value_t = 0.0)]
    pub diversity: f32,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ContinueArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The session so far, oldest first.
    #[arg(required = true)]
    pub tracks: Vec<String>,
    /// Also leave out what this listener already heard.
    #[arg(long)]
    pub user: Option<String>,
    #[arg(short, long, default_value_t = 10)]
    pub k: u32,
    #[arg(long, default_value_t = 0.0)]
    pub diversity: f32,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Listener id.
    pub user: String,
}

/// Print a reply as a table (or JSON).
pub fn print_reply(reply: &RecommendReply, json: bool) {
    if json {
        let items: Vec<serde_json::Value> = reply
            .tracks
            .iter()
            .map(|t| {
                let m = t.metadata.clone().unwrap_or_default();
                let e = t.explanation.clone().unwrap_or_default();
                serde_json::json!({
                    "track_id": t.track_id, "score": t.score, "title": m.title,
                    "composer": m.composer, "ensemble": m.ensemble,
                    "lead_instrument": m.lead_instrument, "because": e.text,
                    "nearest_history_track_id": e.nearest_history_track_id,
                    "similarity": e.similarity, "shared_tags": e.shared_tags,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"strategy": reply.strategy, "model": reply.model_version, "tracks": items})
        );
        return;
    }
    println!(
        "{:>3}  {:<13} {:>6}  {:<34} {:<22} {:<18} because",
        "#", "track", "score", "title", "composer", "ensemble"
    );
    for (i, t) in reply.tracks.iter().enumerate() {
        let m = t.metadata.clone().unwrap_or_default();
        let why = t
            .explanation
            .as_ref()
            .map(|e| e.text.as_str())
            .unwrap_or("");
        println!(
            "{:>3}  {:<13} {:>6.3}  {:<34} {:<22} {:<18} {}",
            i + 1,
            clip(&t.track_id, 13),
            t.score,
            clip(&m.title, 34),
            clip(&m.composer, 22),
            clip(&m.ensemble, 18),
            why
        );
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

pub fn recommend(args: RecommendArgs) -> anyhow::Result<std::process::ExitCode> {
    with_clients(&args.client, async |clients| {
        let reply = clients
            .recommender
            .recommend(RecommendRequest {
                user_id: args.user,
                k: args.k,
                strategy: args.strategy,
                diversity: args.diversity,
                include_heard: args.include_heard,
                filter: args.filter.to_proto(),
            })
            .await
            .map_err(status)?;
        print_reply(&reply.into_inner(), args.json);
        Ok(std::process::ExitCode::SUCCESS)
    })
}

pub fn similar(args: SimilarArgs) -> anyhow::Result<std::process::ExitCode> {
    with_clients(&args.client, async |clients| {
        let reply = clients
            .recommender
            .similar_tracks(SimilarRequest {
                track_id: args.track,
                k: args.k,
                diversity: args.diversity,
                filter: args.filter.to_proto(),
            })
            .await
            .map_err(status)?;
        print_reply(&reply.into_inner(), args.json);
        Ok(std::process::ExitCode::SUCCESS)
    })
}

pub fn continue_session(args: ContinueArgs) -> anyhow::Result<std::process::ExitCode> {
    with_clients(&args.client, async |clients| {
        let reply = clients
            .recommender
            .continue_session(ContinueRequest {
                track_ids: args.tracks,
                k: args.k,
                diversity: args.diversity,
                user_id: args.user.unwrap_or_default(),
                filter: args.filter.to_proto(),
            })
            .await
            .map_err(status)?;
        print_reply(&reply.into_inner(), args.json);
        Ok(std::process::ExitCode::SUCCESS)
    })
}

pub fn state(args: StateArgs) -> anyhow::Result<std::process::ExitCode> {
    with_clients(&args.client, async |clients| {
        let s = clients
            .catalog
            .get_user_state(GetUserStateRequest { user_id: args.user })
            .await
            .map_err(status)?
            .into_inner();
        let mut counts: Vec<_> = s.play_counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!(
            "{}",
            serde_json::json!({
                "user_id": s.user_id, "listens": s.listen_count, "skips": s.skip_count,
                "sessions": s.session_count, "last_event_ms": s.last_event_ms,
                "recent": s.recent_track_ids, "top_played": counts.iter().take(10).map(|(t, n)| serde_json::json!([t, n])).collect::<Vec<_>>(),
                "profile_dims": s.profile_dims, "centroids": s.centroid_count,
            })
        );
        Ok(std::process::ExitCode::SUCCESS)
    })
}
