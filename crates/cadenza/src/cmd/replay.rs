//! `cadenza replay`: the evaluation's synthetic listeners (the same seeded generator the
//! offline evaluation learns and tests on) replayed into a running cadenza at a target rate:
//! through the ingest API, validated like any client's listens, or straight onto the Kafka
//! listen topic that session aggregation consumes. For filling a demo with history, and as
//! the listen load of a load test.
//!
//! Timestamps keep their gaps and are shifted so the generator's window ends now. A listener's
//! events stay in order (one key, one partition; one user's listens are sent in order).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cadenza_bus::{EventBus, KafkaBus, KafkaConfig};
use cadenza_eval::catalogue::Catalogue;
use cadenza_eval::listeners::{ListenEvent, ListenGenerator, ListenerConfig};
use cadenza_proto::topics;
use cadenza_proto::v1::{ListenBatch, ListenRecorded, ListenRequest};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message as _;

use super::client::{ClientArgs, now_ms, status};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Corpus preset whose catalogue the listeners choose from (its track ids must be the
    /// ingested ones: `cadenza ingest … --metadata catalogue.csv` keeps them).
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Catalogue file to use instead of the preset's.
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// Synthetic listeners.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Seed of the generator (the evaluation's default is 1).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Target events per second (0: as fast as the sink takes them).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Stop after this many events [default: all the listeners generate].
    #[arg(long)]
    pub limit: Option<usize>,
    /// Listens per `RecordListens` call, or per burst of publishes.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Publish straight to the listen topic of this Kafka (bootstrap servers) instead of
    /// calling the ingest API: no validation, the broker's full rate.
    #[arg(long)]
    pub kafka: Option<String>,
}

enum Sink {
    Api(Box<super::client::Clients>),
    Kafka(Arc<dyn EventBus>),
}

impl Sink {
    /// Send one batch; returns how many were refused (by the API), each reason counted.
    async fn send(
        &mut self,
        batch: Vec<ListenRequest>,
        reasons: &mut BTreeMap<String, usize>,
    ) -> anyhow::Result<usize> {
        match self {
            Sink::Api(c) => {
                let ack = c
                    .ingest
                    .record_listens(ListenBatch { listens: batch })
                    .await
                    .map_err(status)?
                    .into_inner();
                for item in ack.items.iter().filter(|i| !i.accepted) {
                    *reasons.entry(item.reason.clone()).or_default() += 1;
                }
                Ok(ack.rejected as usize)
            }
            Sink::Kafka(bus) => {
                // One task per listener: users in parallel, each user's listens in order.
                let mut by_user: BTreeMap<String, Vec<ListenRequest>> = BTreeMap::new();
                for l in batch {
                    by_user.entry(l.user_id.clone()).or_default().push(l);
                }
                let mut tasks = tokio::task::JoinSet::new();
                for (user, listens) in by_user {
                    let bus = bus.clone();
                    tasks.spawn(async move {
                        for l in listens {
                            let event = ListenRecorded {
                                event_id: l.event_id,
                                user_id: l.user_id,
                                track_id: l.track_id,
                                timestamp_ms: l.timestamp_ms,
                                play_fraction: l.play_fraction,
                                skipped: l.skipped,
                                session_hint: l.session_hint,
                            };
                            bus.publish(
                                topics::LISTEN,
                                user.as_bytes(),
                                event.encode_to_vec(),
                                Vec::new(),
                            )
                            .await?;
                        }
                        anyhow::Ok(())
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.context("a publishing task failed")??;
                }
                Ok(0)
            }
        }
    }
}

fn request(e: ListenEvent, shift_ms: i64, seed: u64) -> ListenRequest {
    ListenRequest {
        // Stable ids: replaying the same seed twice is deduplicated downstream, not doubled.
        event_id: format!("replay-{seed}-{}", e.event_id),
        user_id: e.user_id,
        track_id: e.track_id,
        timestamp_ms: e.ts_ms + shift_ms,
        play_fraction: e.play_fraction,
        skipped: e.skipped,
        session_hint: String::new(),
    }
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate >= 0.0,
        "--rate must be a non-negative number of events per second"
    );
    let path = args
        .catalogue
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/corpus/{}/catalogue.jsonl", args.preset)));
    let cat = Catalogue::load(&path).with_context(|| {
        format!(
            "reading the catalogue (build it with `make corpus PRESET={}`)",
            args.preset
        )
    })?;
    let config = ListenerConfig {
        n_users: args.users,
        seed: args.seed,
        ..Default::default()
    };
    let window_end = config.start_ms + i64::from(config.span_days) * 86_400_000;
    let shift_ms = now_ms() - window_end;
    let limit = args.limit.unwrap_or(usize::MAX);
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut sink = match &args.kafka {
            Some(brokers) => {
                let mut cfg = KafkaConfig::new(brokers.clone());
                cfg.client_id = "cadenza-replay".into();
                Sink::Kafka(Arc::new(KafkaBus::new(cfg)?))
            }
            None => Sink::Api(Box::new(args.client.connect().await?)),
        };
        let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
            "{spinner} replay {pos} listens, {per_sec} [{elapsed}]",
        )?);
        bar.enable_steady_tick(Duration::from_millis(200));
        let mut events = ListenGenerator::new(&cat, config)
            .take(limit)
            .map(|e| request(e, shift_ms, args.seed));
        let start = Instant::now();
        let (mut sent, mut refused) = (0usize, 0usize);
        let mut reasons = BTreeMap::new();
        loop {
            let batch: Vec<ListenRequest> = events.by_ref().take(args.batch).collect();
            if batch.is_empty() {
                break;
            }
            if args.rate > 0.0 {
                // Open loop: batch i leaves at start + i·batch/rate, whatever the last took.
                let due = start + Duration::from_secs_f64(sent as f64 / args.rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let n = batch.len();
            refused += sink.send(batch, &mut reasons).await?;
            sent += n;
            bar.set_position(sent as u64);
        }
        bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{sent} listens of {} listeners in {secs:.1} s ({:.0}/s{}), {} accepted, {refused} refused",
            args.users,
            sent as f64 / secs.max(1e-9),
            if args.rate > 0.0 {
                format!(", target {:.0}/s", args.rate)
            } else {
                String::new()
            },
            sent - refused
        );
        for (reason, n) in &reasons {
            println!("  refused {n}×: {reason}");
        }
        Ok(if refused == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
