//! Open-loop gRPC load: requests leave on a fixed schedule whatever the server's latency (a
//! closed loop would slow down with the server and hide its queueing), and each latency is
//! measured from the moment the request was *due*, so a stalled generator or server counts
//! against the figures instead of silently skipping requests (coordinated omission).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use cadenza_proto::v1::catalog_client::CatalogClient;
use cadenza_proto::v1::ingest_client::IngestClient;
use cadenza_proto::v1::recommender_client::RecommenderClient;
use cadenza_proto::v1::{GetUserStateRequest, ListenBatch, ListenRequest, RecommendRequest};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::catalogue::{member, track_id};

/// Where the API is.
#[derive(Debug, Clone, Args)]
pub struct Server {
    /// The cadenza gRPC endpoint.
    #[arg(long, env = "CADENZA_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// Bearer token, when the server requires one.
    #[arg(long, env = "CADENZA_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Adds the bearer token; cheap to clone, so every in-flight request can own a client.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.0 {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

impl Server {
    pub(crate) fn bearer(&self) -> anyhow::Result<Bearer> {
        Ok(Bearer(
            self.token
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| format!("Bearer {t}").parse())
                .transpose()
                .context("the token is not valid in a header")?,
        ))
    }

    pub(crate) async fn channel(&self) -> anyhow::Result<Channel> {
        Endpoint::from_shared(self.server.clone())
            .with_context(|| format!("--server {:?} is not a URL", self.server))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {} (is `cadenza up` running?)", self.server))
    }
}

/// Id of synthetic listener `u`.
pub fn user_id(u: usize) -> String {
    format!("load-user-{u:05}")
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub server: Server,
    /// Listeners to create.
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Listens each (in one favourite cluster, a few elsewhere).
    #[arg(long, default_value_t = 20)]
    pub history: usize,
    /// Size of the catalogue the listens choose from (`catalogue --tracks`).
    #[arg(long, default_value_t = 100_000)]
    pub tracks: usize,
    /// Its clusters (`catalogue --clusters`).
    #[arg(long, default_value_t = 512)]
    pub clusters: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Give up waiting for the aggregation after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The history of listener `u`: mostly one cluster, one listen in five elsewhere.
pub fn history(
    u: usize,
    n: usize,
    tracks: usize,
    clusters: usize,
    seed: u64,
) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed ^ (u as u64).wrapping_mul(0x9E37_79B9));
    let favourite = rng.random_range(0..clusters.min(tracks).max(1));
    (0..n)
        .map(|j| {
            let c = if rng.random_bool(0.2) {
                rng.random_range(0..clusters.min(tracks).max(1))
            } else {
                favourite
            };
            let i = member(c, rng.random_range(0..usize::MAX / 2), tracks, clusters);
            (format!("load-{seed}-u{u}-{j}"), track_id(i))
        })
        .collect()
}

pub fn users(args: UsersArgs) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let channel = args.server.channel().await?;
        let bearer = args.server.bearer()?;
        let mut ingest = IngestClient::with_interceptor(channel.clone(), bearer.clone());
        let mut catalog = CatalogClient::with_interceptor(channel, bearer);
        let started = Instant::now();
        let base = now_ms() - (args.history as i64) * 240_000;
        let bar = ProgressBar::new((args.users * args.history) as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} listens recorded, {per_sec}")?,
        );
        let mut batch = Vec::new();
        for u in 0..args.users {
            for (j, (event_id, track)) in
                history(u, args.history, args.tracks, args.clusters, args.seed)
                    .into_iter()
                    .enumerate()
            {
                batch.push(ListenRequest {
                    user_id: user_id(u),
                    track_id: track,
                    timestamp_ms: base + j as i64 * 240_000,
                    play_fraction: 1.0,
                    skipped: false,
                    event_id,
                    session_hint: String::new(),
                });
            }
            if batch.len() >= 500 || u + 1 == args.users {
                let n = batch.len();
                let ack = ingest
                    .record_listens(ListenBatch {
                        listens: std::mem::take(&mut batch),
                    })
                    .await?
                    .into_inner();
                if let Some(bad) = ack.items.iter().find(|i| !i.accepted) {
                    anyhow::bail!("ingest refused a listen: {}", bad.reason);
                }
                bar.inc(n as u64);
            }
        }
        bar.finish_and_clear();
        // One user's listens are aggregated in order, so a complete count for every user
        // means everything is in.
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let bar = ProgressBar::new(args.users as u64).with_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} listener states complete",
        )?);
        for u in 0..args.users {
            loop {
                let state = catalog
                    .get_user_state(GetUserStateRequest {
                        user_id: user_id(u),
                    })
                    .await;
                if matches!(&state, Ok(s) if s.get_ref().listen_count >= args.history as u64) {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "{} still not aggregated after {} s",
                    user_id(u),
                    args.timeout
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        println!(
            "{} listeners × {} listens recorded and aggregated in {:.1} s",
            args.users,
            args.history,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

#[derive(Debug, Args)]
pub struct GrpcArgs {
    #[command(flatten)]
    pub server: Server,
    /// Request rates to measure, one after the other (requests per second).
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000")]
    pub rates: Vec<f64>,
    /// Seconds measured at each rate.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds at each rate before measuring (connections, caches, allocator warm).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Listeners the requests are for (`users --users`).
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Recommendations per request.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
    /// Ranker (`Recommend.strategy`).
    #[arg(long, default_value = "knn")]
    pub strategy: String,
    /// MMR λ (0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub diversity: f32,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests allowed in flight; beyond it a due request is counted as dropped, not sent.
    #[arg(long, default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// Worker threads of the generator (keep it small: it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// What is measured, e.g. "100k tracks" (goes into the JSON).
    #[arg(long, default_value = "")]
    pub label: String,
    /// Append one JSON object per rate to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Figures of one rate.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub label: String,
    pub strategy: String,
    pub target_rps: f64,
    pub achieved_rps: f64,
    pub sent: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub dropped: u64,
    /// From when each request was due (includes any queueing in the generator).
    pub latency_ms: Percentiles,
    /// From when each request actually left.
    pub service_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

struct Outcome {
    latency_us: u64,
    service_us: u64,
    error: Option<tonic::Code>,
    done: Instant,
}

pub fn run(args: GrpcArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rates.iter().all(|r| r.is_finite() && *r > 0.0),
        "--rates must be positive numbers of requests per second"
    );
    anyhow::ensure!(
        args.users > 0 && args.connections > 0,
        "--users and --connections must be positive"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async {
        let bearer = args.server.bearer()?;
        let mut clients = Vec::new();
        for _ in 0..args.connections {
            clients.push(RecommenderClient::with_interceptor(
                args.server.channel().await?,
                bearer.clone(),
            ));
        }
        // One request first: a wrong strategy or an empty server fails here, clearly.
        clients[0]
            .clone()
            .recommend(request(&args, 0))
            .await
            .with_context(|| format!("a first Recommend for {}", user_id(0)))?;
        println!(
            "{:>8} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "rate/s",
            "achieved",
            "ok",
            "errors",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "svc p99"
        );
        for &rate in &args.rates {
            phase(&clients, &args, rate, args.warmup).await?;
            let f = phase(&clients, &args, rate, args.duration).await?;
            println!(
                "{:>8.0} {:>9.0} {:>8} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>9.3}",
                f.target_rps,
                f.achieved_rps,
                f.ok,
                f.errors.values().sum::<u64>() + f.dropped,
                f.latency_ms.p50,
                f.latency_ms.p90,
                f.latency_ms.p99,
                f.latency_ms.p99_9,
                f.latency_ms.max,
                f.service_ms.p99
            );
            for (code, n) in &f.errors {
                println!("         {n} × {code}");
            }
            if let Some(path) = &args.json {
                use std::io::Write as _;
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                writeln!(file, "{}", serde_json::to_string(&f)?)?;
            }
        }
        Ok(())
    })
}

fn request(args: &GrpcArgs, i: u64) -> RecommendRequest {
    // A fixed stride through the listeners: every one asked, no two requests in a row alike.
    let u = (i.wrapping_mul(7_919) % args.users as u64) as usize;
    RecommendRequest {
        user_id: user_id(u),
        k: args.k,
        strategy: args.strategy.clone(),
        diversity: args.diversity,
        include_heard: false,
        filter: None,
    }
}

async fn phase(
    clients: &[RecommenderClient<Authed>],
    args: &GrpcArgs,
    rate: f64,
    seconds: f64,
) -> anyhow::Result<Figures> {
    let total = (rate * seconds).round() as u64;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(5);
    // The schedule runs on a thread of its own: tokio's timer fires on millisecond ticks, so
    // at 2,000 req/s (one due every 0.5 ms) most requests would leave up to 1 ms after they
    // were due, and that lateness of the generator would be charged to the server. A thread's
    // sleep wakes within tens of microseconds.
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let schedule = std::thread::spawn(move || {
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if due_tx.send((i, due)).is_err() {
                break;
            }
        }
    });
    let mut dropped = 0u64;
    while let Some((i, due)) = due_rx.recv().await {
        if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
            dropped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let mut client = clients[i as usize % clients.len()].clone();
        let (req, tx, in_flight) = (request(args, i), tx.clone(), in_flight.clone());
        tokio::spawn(async move {
            let sent = Instant::now();
            let result = client.recommend(req).await;
            let done = Instant::now();
            let _ = tx.send(Outcome {
                latency_us: (done - due).as_micros() as u64,
                service_us: (done - sent).as_micros() as u64,
                error: result.err().map(|s| s.code()),
                done,
            });
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    schedule
        .join()
        .map_err(|_| anyhow::anyhow!("the request schedule's thread panicked"))?;
    drop(tx);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut service = latency.clone();
    let (mut ok, mut errors, mut last) = (0u64, BTreeMap::<String, u64>::new(), start);
    let collect = async {
        while let Some(o) = rx.recv().await {
            latency.saturating_record(o.latency_us.max(1));
            service.saturating_record(o.service_us.max(1));
            last = last.max(o.done);
            match o.error {
                None => ok += 1,
                Some(code) => *errors.entry(format!("{code:?}")).or_default() += 1,
            }
        }
    };
    // Stragglers get 30 s; whatever has not answered by then is an error.
    let finished = tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .is_ok();
    let answered = ok + errors.values().sum::<u64>();
    if !finished {
        *errors.entry("NoAnswerIn30s".into()).or_default() += total - dropped - answered;
    }
    Ok(Figures {
        label: args.label.clone(),
        strategy: args.strategy.clone(),
        target_rps: rate,
        achieved_rps: ok as f64 / (last - start).as_secs_f64().max(1e-9),
        sent: total - dropped,
        ok,
        errors,
        dropped,
        latency_ms: Percentiles::of(&latency),
        service_ms: Percentiles::of(&service),
    })
}
