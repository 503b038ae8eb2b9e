//! `cadenza rebuild`: every derived store rebuilt from the source of truth, the event log.
//!
//! Track points come from `cadenza.track.embedded` (what feature extraction published), user
//! states from replaying `cadenza.listen` through the same rules session aggregation applies
//! ([`cadenza_core::UserState::apply_at`] with the track vectors as the index stores them),
//! into a fresh qdrant-edge index. The log is read up to a cut taken at the start, so writers
//! may keep going (distributed mode).
//!
//! `--check` compares the rebuilt stores with the live ones and exits 1 if any point
//! differs: the live index of `cadenza up` (embedded), a Qdrant server (`--qdrant-url`), or
//! else the last `cadenza.user-state` snapshot of every user, which is what every replica
//! materialises. A live user state that has not applied every listen of the cut yet (session
//! aggregation lagging) is reported as behind, not as different.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cadenza_bus::{EventBus, Message, StartFrom, SubscribeOpts};
use cadenza_core::{Position, StateConfig, UserState};
use cadenza_index::{EdgeIndex, Point, PointId, VectorIndex};
use cadenza_proto::Message as _;
use cadenza_proto::topics;
use cadenza_proto::v1::{ListenRecorded, TrackEmbedded, UserStateUpdated};
use cadenza_svc::catalog::{self, TRACKS, USERS, tracks_spec, users_spec};
use cadenza_svc::wiring::{BusArgs, IndexArgs};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The data directory of `cadenza up` (its event log is `bus/`, its live index `index/`).
    /// `cadenza up` must be stopped: the log is locked while it runs.
    #[arg(long, env = "CADENZA_DATA_DIR", default_value = "data/up")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub index: IndexArgs,
    /// Where the rebuilt qdrant-edge index goes [default: <data-dir>/index.rebuilt].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Delete `--out` first if it exists.
    #[arg(long)]
    pub force: bool,
    /// Compare the rebuilt stores with the live ones; exit 1 if they differ.
    #[arg(long)]
    pub check: bool,
    /// Embedded only: make the rebuilt index the live one (the old one is kept beside it as
    /// `index.old-<unix seconds>`). With `--check`, only when the live one was behind or
    /// different — the point of a rebuild after a damaged or lost index.
    #[arg(long)]
    pub replace: bool,
    /// Inactivity gap that closes a listening session, in seconds (as the live service's).
    #[arg(long, env = "CADENZA_SESSION_GAP_S", default_value_t = 1800)]
    pub session_gap_s: u64,
    /// Give up when no event arrives for this long while the cut is not reached.
    #[arg(long, default_value_t = 60)]
    pub stall_s: u64,
}

/// What the replay of one topic came to.
#[derive(Debug, Default)]
struct Counts {
    events: u64,
    refused: BTreeMap<String, u64>,
}

impl Counts {
    fn refuse(&mut self, why: &str) {
        *self.refused.entry(why.to_owned()).or_default() += 1;
    }

    fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }
}

pub fn run(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let embedded = args.bus.kafka_brokers.is_none();
    cadenza_svc::wiring::exit_on_problems(args.bus.problems());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.data_dir.join("index.rebuilt"));
    let live_dir = args.data_dir.join("index");
    anyhow::ensure!(
        !same_path(&out, &live_dir),
        "--out {} is the live index; rebuild into another folder (and --replace to swap)",
        out.display()
    );
    anyhow::ensure!(
        !args.replace || embedded,
        "--replace swaps the embedded index; in distributed mode point the services at the \
         rebuilt folder (or re-create their consumer groups) instead"
    );
    anyhow::ensure!(
        !embedded || args.data_dir.join("bus").is_dir(),
        "no event log in {}: nothing to rebuild from (is --data-dir the folder `cadenza up` \
         ran with?)",
        args.data_dir.join("bus").display()
    );
    if out.exists() && std::fs::read_dir(&out)?.next().is_some() {
        anyhow::ensure!(
            args.force,
            "{} already holds an index: remove it or pass --force",
            out.display()
        );
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let started = Instant::now();
        let bus = args
            .bus
            .connect("cadenza-rebuild", &args.data_dir)
            .await
            .map_err(|e| {
                if embedded {
                    e.context(format!(
                        "opening the event log in {} (is `cadenza up` still running on it?)",
                        args.data_dir.join("bus").display()
                    ))
                } else {
                    e
                }
            })?;
        let stall = Duration::from_secs(args.stall_s.max(1));
        // The cut: snapshots first, then listens, then tracks, so that every live snapshot
        // below the cut comes from listens below it, and every track those listens name is in.
        let snapshot_cut = bus.end_offsets(topics::USER_STATE).await?;
        let listen_cut = bus.end_offsets(topics::LISTEN).await?;
        let track_cut = bus.end_offsets(topics::TRACK_EMBEDDED).await?;
        let group = format!("cadenza-rebuild-{}", super::client::now_ms());

        std::fs::create_dir_all(&out)?;
        let index: Arc<dyn VectorIndex> =
            Arc::new(EdgeIndex::open_with(&out, args.index.edge.options()).await?);

        // Tracks, in batches.
        let mut tracks = Counts::default();
        let mut dim = None;
        let mut batch = Vec::new();
        let bar = progress(sum(&track_cut), "tracks");
        let mut reader = Cut::open(&bus, topics::TRACK_EMBEDDED, &group, &track_cut, stall).await?;
        while let Some(msg) = reader.next().await? {
            tracks.events += 1;
            bar.inc(1);
            match TrackEmbedded::decode(msg.payload.as_slice()) {
                Ok(e) if !e.vector.is_empty() => {
                    dim.get_or_insert(e.vector.len());
                    batch.push(catalog::track_point(&e));
                }
                Ok(_) => tracks.refuse("no vector"),
                Err(_) => tracks.refuse("malformed"),
            }
            if batch.len() >= 256 {
                flush_tracks(index.as_ref(), &mut batch, dim, &mut tracks).await?;
            }
        }
        reader.close().await?;
        flush_tracks(index.as_ref(), &mut batch, dim, &mut tracks).await?;
        bar.finish_and_clear();

        // The track vectors exactly as the index holds them (normalised for cosine): what the
        // live aggregation read for every listen.
        let vectors: HashMap<PointId, Vec<f32>> = scroll_all(index.as_ref(), TRACKS)
            .await?
            .into_iter()
            .map(|p| (p.id, p.vector))
            .collect();

        // Users: every listen of the cut through the aggregation's rules, in log order.
        let config = StateConfig {
            session_gap_ms: args.session_gap_s.saturating_mul(1000),
            ..StateConfig::default()
        };
        let mut listens = Counts::default();
        let mut states: BTreeMap<String, UserState> = BTreeMap::new();
        let now = super::client::now_ms();
        let bar = progress(sum(&listen_cut), "listens");
        let mut reader = Cut::open(&bus, topics::LISTEN, &group, &listen_cut, stall).await?;
        while let Some(msg) = reader.next().await? {
            listens.events += 1;
            bar.inc(1);
            let Ok(wire) = ListenRecorded::decode(msg.payload.as_slice()) else {
                listens.refuse("malformed");
                continue;
            };
            let Ok(listen) = cadenza_session_aggregation::to_listen(&wire, now) else {
                listens.refuse("invalid");
                continue;
            };
            let Some(vector) = vectors.get(&catalog::point_id(listen.track.as_str())) else {
                listens.refuse("unknown track");
                continue;
            };
            let at = Position {
                partition: msg.partition,
                offset: msg.offset,
            };
            states
                .entry(listen.user.as_str().to_owned())
                .or_insert_with(|| UserState::new(listen.user.clone(), config))
                .apply_at(&listen, Some(at), Some(vector));
        }
        reader.close().await?;
        bar.finish_and_clear();
        if let Some(dim) = dim {
            index.ensure_collection(&users_spec(dim)).await?;
            let mut points = Vec::new();
            for state in states.values() {
                points.push(cadenza_session_aggregation::user_point(state, dim)?.0);
                if points.len() >= 256 {
                    index.upsert(USERS, std::mem::take(&mut points)).await?;
                }
            }
            if !points.is_empty() {
                index.upsert(USERS, points).await?;
            }
        }
        index.optimize().await?;
        index.flush().await?;
        println!(
            "rebuilt {} from {} in {:.1} s",
            out.display(),
            if embedded {
                format!("the event log {}", args.data_dir.join("bus").display())
            } else {
                "Kafka".to_owned()
            },
            started.elapsed().as_secs_f64()
        );
        println!(
            "  tracks: {} events → {} points{}",
            tracks.events,
            vectors.len(),
            refused(&tracks)
        );
        println!(
            "  users: {} listens → {} listeners{}",
            listens.events,
            states.len(),
            refused(&listens)
        );

        let mut code = ExitCode::SUCCESS;
        let mut stale = false;
        if args.check {
            let report = if embedded {
                drop(bus);
                let live = EdgeIndex::open(&live_dir)
                    .await
                    .with_context(|| format!("opening the live index {}", live_dir.display()))?;
                compare(
                    index.as_ref(),
                    &live,
                    &format!("the live index {}", live_dir.display()),
                )
                .await?
            } else if args.index.is_shared() {
                let live = args.index.open(&args.data_dir).await?;
                compare(index.as_ref(), live.as_ref(), "the Qdrant server").await?
            } else {
                let live = snapshots(&bus, &group, &snapshot_cut, stall).await?;
                compare_users(
                    index.as_ref(),
                    &live,
                    "the last cadenza.user-state snapshots",
                )
                .await?
            };
            print!("{report}");
            stale = !report.identical();
            if report.different > 0 {
                code = ExitCode::from(1);
            }
        }
        drop(index);
        if args.replace && (!args.check || stale) {
            let old = args
                .data_dir
                .join(format!("index.old-{}", super::client::now_ms() / 1000));
            if live_dir.exists() {
                std::fs::rename(&live_dir, &old)?;
            }
            std::fs::rename(&out, &live_dir)?;
            println!(
                "the rebuilt index is now {} (the previous one is {})",
                live_dir.display(),
                old.display()
            );
            code = ExitCode::SUCCESS;
        }
        Ok(code)
    })
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn sum(cut: &[i64]) -> u64 {
    cut.iter().map(|e| u64::try_from(*e).unwrap_or(0)).sum()
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{bar:30}} {{pos}}/{{len}} {what} [{{elapsed}}, {{per_sec}}]"
    )) {
        bar.set_style(style);
    }
    bar
}

fn refused(c: &Counts) -> String {
    if c.refused.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = c.refused.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(
        " ({} left out, as the live service dead-lettered them: {})",
        c.refused_total(),
        parts.join(", ")
    )
}

/// A topic read as a fresh group from the start up to a cut (offsets past it are skipped).
struct Cut {
    sub: Option<Box<dyn cadenza_bus::Subscription>>,
    topic: String,
    /// Partitions still to read, with the last offset to read in each.
    remaining: HashMap<i32, i64>,
    stall: Duration,
}

impl Cut {
    async fn open(
        bus: &Arc<dyn EventBus>,
        topic: &str,
        group: &str,
        cut: &[i64],
        stall: Duration,
    ) -> anyhow::Result<Cut> {
        let remaining: HashMap<i32, i64> = cut
            .iter()
            .enumerate()
            .filter(|(_, end)| **end > 0)
            .map(|(p, end)| (i32::try_from(p).expect("partition fits i32"), end - 1))
            .collect();
        let sub = if remaining.is_empty() {
            None
        } else {
            let opts = SubscribeOpts {
                from: StartFrom::Earliest,
            };
            Some(bus.subscribe(group, &[topic], opts).await?)
        };
        Ok(Cut {
            sub,
            topic: topic.to_owned(),
            remaining,
            stall,
        })
    }

    /// The next event below the cut; `None` once every partition reached it.
    async fn next(&mut self) -> anyhow::Result<Option<Message>> {
        let Some(sub) = self.sub.as_mut() else {
            return Ok(None);
        };
        while !self.remaining.is_empty() {
            let msg = tokio::time::timeout(self.stall, sub.next())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no event of {} for {} s while {} partition(s) had not reached the \
                         cut: is the broker reachable, and does the topic still hold \
                         everything (retention)?",
                        self.topic,
                        self.stall.as_secs(),
                        self.remaining.len()
                    )
                })??;
            let Some(last) = self.remaining.get(&msg.partition).copied() else {
                continue; // this partition is done: past the cut
            };
            if msg.offset >= last {
                self.remaining.remove(&msg.partition);
            }
            if msg.offset <= last {
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }

    async fn close(mut self) -> anyhow::Result<()> {
        if let Some(sub) = self.sub.take() {
            sub.close().await?;
        }
        Ok(())
    }
}

/// Upsert a batch of track points; a vector of another width than the first (a model change
/// in the log) is left out and counted, as the live index refused it.
async fn flush_tracks(
    index: &dyn VectorIndex,
    batch: &mut Vec<Point>,
    dim: Option<usize>,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    let Some(dim) = dim else { return Ok(()) };
    if batch.is_empty() {
        return Ok(());
    }
    index.ensure_collection(&tracks_spec(dim)).await?;
    let (fit, misfit): (Vec<Point>, Vec<Point>) = std::mem::take(batch)
        .into_iter()
        .partition(|p| p.vector.len() == dim);
    for _ in misfit {
        counts.refuse("another vector width");
    }
    index.upsert(TRACKS, fit).await?;
    Ok(())
}

async fn scroll_all(index: &dyn VectorIndex, collection: &str) -> anyhow::Result<Vec<Point>> {
    let mut out = Vec::new();
    let mut offset = None;
    loop {
        let (page, next) = match index.scroll(collection, offset, 1024).await {
            Ok(p) => p,
            Err(cadenza_index::IndexError::UnknownCollection(_)) => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        out.extend(page);
        match next {
            Some(n) => offset = Some(n),
            None => return Ok(out),
        }
    }
}

/// The last state snapshot of every user on the user-state topic, up to `cut`.
async fn snapshots(
    bus: &Arc<dyn EventBus>,
    group: &str,
    cut: &[i64],
    stall: Duration,
) -> anyhow::Result<Vec<Point>> {
    let mut last: HashMap<String, Point> = HashMap::new();
    let group = format!("{group}-snapshots");
    let mut reader = Cut::open(bus, topics::USER_STATE, &group, cut, stall).await?;
    while let Some(msg) = reader.next().await? {
        if let Some((user, p)) = UserStateUpdated::decode(msg.payload.as_slice())
            .ok()
            .and_then(|e| catalog::user_point(&e).map(|p| (e.user_id, p)))
        {
            last.insert(user, p);
        }
    }
    reader.close().await?;
    Ok(last.into_values().collect())
}

/// How the rebuilt stores compare with the live ones.
#[derive(Debug, Default)]
struct Report {
    against: String,
    lines: Vec<String>,
    identical: u64,
    behind: u64,
    different: u64,
    examples: Vec<String>,
}

impl Report {
    fn identical(&self) -> bool {
        self.behind == 0 && self.different == 0
    }

    fn differ(&mut self, what: String) {
        self.different += 1;
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "check against {}:", self.against)?;
        for l in &self.lines {
            writeln!(f, "  {l}")?;
        }
        for e in &self.examples {
            writeln!(f, "  differs: {e}")?;
        }
        let verdict = if self.different > 0 {
            "DIFFERENT: the live stores disagree with the log"
        } else if self.behind > 0 {
            "live is behind the log (not yet aggregated); no disagreement"
        } else {
            "identical"
        };
        writeln!(f, "  {verdict}")
    }
}

async fn compare(
    rebuilt: &dyn VectorIndex,
    live: &dyn VectorIndex,
    against: &str,
) -> anyhow::Result<Report> {
    let mut report = Report {
        against: against.to_owned(),
        ..Report::default()
    };
    let (a, b) = (
        scroll_all(rebuilt, TRACKS).await?,
        scroll_all(live, TRACKS).await?,
    );
    let (mut same, before) = (0u64, report.different);
    let live_tracks: HashMap<PointId, Point> = b.into_iter().map(|p| (p.id, p)).collect();
    for p in &a {
        match live_tracks.get(&p.id) {
            None => report.differ(format!("track {} missing from the live index", name(p))),
            Some(l) if !points_close(p, l) => {
                report.differ(format!("track {} has another vector or payload", name(p)))
            }
            Some(_) => same += 1,
        }
    }
    let rebuilt_ids: std::collections::HashSet<PointId> = a.iter().map(|p| p.id).collect();
    for (id, p) in &live_tracks {
        if !rebuilt_ids.contains(id) {
            report.differ(format!("live track {} is not in the log", name(p)));
        }
    }
    report.lines.push(format!(
        "tracks: {} rebuilt, {} live, {same} identical, {} different",
        a.len(),
        live_tracks.len(),
        report.different - before
    ));
    report.identical += same;
    let users = scroll_all(live, USERS).await?;
    users_against(rebuilt, &users, &mut report).await?;
    Ok(report)
}

async fn compare_users(
    rebuilt: &dyn VectorIndex,
    live: &[Point],
    against: &str,
) -> anyhow::Result<Report> {
    let mut report = Report {
        against: against.to_owned(),
        ..Report::default()
    };
    users_against(rebuilt, live, &mut report).await?;
    Ok(report)
}

async fn users_against(
    rebuilt: &dyn VectorIndex,
    live: &[Point],
    report: &mut Report,
) -> anyhow::Result<()> {
    let a = scroll_all(rebuilt, USERS).await?;
    let live: HashMap<PointId, &Point> = live.iter().map(|p| (p.id, p)).collect();
    let (mut same, mut behind, before) = (0u64, 0u64, report.different);
    for p in &a {
        let Some(l) = live.get(&p.id) else {
            // Every listen of this user is still in flight.
            behind += 1;
            continue;
        };
        if points_close(p, l) {
            same += 1;
            continue;
        }
        let state = |p: &Point| cadenza_session_aggregation::state_of(&p.payload).ok();
        match (state(p), state(l)) {
            (Some(r), Some(s)) if is_behind(&s, &r) => behind += 1,
            (Some(r), Some(s)) => report.differ(format!(
                "user {}: {} listens, {} sessions rebuilt vs {} listens, {} sessions live",
                r.user.as_str(),
                r.listen_count,
                r.session_count,
                s.listen_count,
                s.session_count
            )),
            _ => report.differ(format!("user {}: unreadable state", name(p))),
        }
    }
    let rebuilt_ids: std::collections::HashSet<PointId> = a.iter().map(|p| p.id).collect();
    for (id, p) in &live {
        if !rebuilt_ids.contains(id) {
            report.differ(format!("live user {} has no listens in the log", name(p)));
        }
    }
    report.lines.push(format!(
        "users: {} rebuilt, {} live, {same} identical, {behind} behind, {} different",
        a.len(),
        live.len(),
        report.different - before
    ));
    report.identical += same;
    report.behind += behind;
    Ok(())
}

/// The live state has applied a strict prefix of what the rebuild applied: every partition's
/// watermark at or below the rebuilt one, and fewer listens.
fn is_behind(live: &UserState, rebuilt: &UserState) -> bool {
    live.listen_count + live.skip_count < rebuilt.listen_count + rebuilt.skip_count
        && live
            .watermarks
            .iter()
            .all(|(p, o)| rebuilt.watermarks.get(p).is_some_and(|r| o <= r))
}

fn name(p: &Point) -> String {
    ["track_id", "user_id"]
        .iter()
        .find_map(|k| p.payload.get(*k).and_then(Value::as_str))
        .map_or_else(|| format!("{:?}", p.id), str::to_owned)
}

/// Same id, vectors of the same direction (within 1e-5 once normalised: indexes store
/// cosine vectors normalised, announcements carry them as computed), payloads equal with
/// numbers within 1e-5 (relative).
fn points_close(a: &Point, b: &Point) -> bool {
    let unit = |v: &[f32]| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter()
            .map(|x| if n > 0.0 { x / n } else { *x })
            .collect::<Vec<f32>>()
    };
    a.id == b.id
        && a.vector.len() == b.vector.len()
        && unit(&a.vector)
            .iter()
            .zip(&unit(&b.vector))
            .all(|(x, y)| (x - y).abs() <= 1e-5)
        && a.payload.len() == b.payload.len()
        && a.payload
            .iter()
            .all(|(k, v)| b.payload.get(k).is_some_and(|w| json_close(v, w)))
}

fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-5 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_close(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_tolerates_float_noise_only() {
        let a = serde_json::json!({"n": 3, "v": [0.1, 0.2], "s": "x"});
        let b = serde_json::json!({"n": 3, "v": [0.100_000_1, 0.2], "s": "x"});
        let c = serde_json::json!({"n": 4, "v": [0.1, 0.2], "s": "x"});
        let d = serde_json::json!({"n": 3, "v": [0.1, 0.2, 0.3], "s": "x"});
        assert!(json_close(&a, &b));
        assert!(!json_close(&a, &c));
        assert!(!json_close(&a, &d));
    }

    #[test]
    fn points_compare_by_direction_and_payload() {
        let p = |v: Vec<f32>, n: u64| {
            let mut payload = serde_json::Map::new();
            payload.insert("n".into(), serde_json::json!(n));
            Point::new(7, v).with_payload(payload)
        };
        assert!(points_close(&p(vec![3.0, 4.0], 1), &p(vec![0.6, 0.8], 1)));
        assert!(!points_close(&p(vec![3.0, 4.0], 1), &p(vec![0.8, 0.6], 1)));
        assert!(!points_close(&p(vec![3.0, 4.0], 1), &p(vec![0.6, 0.8], 2)));
    }

    #[test]
    fn behind_means_a_prefix_of_the_log() {
        let cfg = StateConfig::default();
        let user = cadenza_core::UserId::new("u").unwrap();
        let mut live = UserState::new(user.clone(), cfg);
        let mut rebuilt = UserState::new(user, cfg);
        live.listen_count = 3;
        live.watermarks.insert(0, 10);
        rebuilt.listen_count = 5;
        rebuilt.watermarks.insert(0, 14);
        assert!(is_behind(&live, &rebuilt));
        // Ahead of the rebuild on a partition, or as many listens: not behind, different.
        live.watermarks.insert(0, 20);
        assert!(!is_behind(&live, &rebuilt));
        live.watermarks.insert(0, 10);
        live.listen_count = 5;
        assert!(!is_behind(&live, &rebuilt));
    }
}
