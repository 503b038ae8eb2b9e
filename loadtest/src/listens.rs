//! The listen path's throughput over Kafka. Listens are published onto the listen topic
//! faster than session aggregation can take them; the figure is how fast its consumer group's
//! committed offsets catch up with the end of the topic — listens aggregated into user state
//! (read, update, index write, `user-state` event) and committed, per second.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cadenza_bus::{EventBus, KafkaBus, KafkaConfig};
use cadenza_proto::topics;
use cadenza_proto::v1::ListenRecorded;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::grpc::{history, user_id};

#[derive(Debug, Args)]
pub struct ListensArgs {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:19092")]
    pub kafka: String,
    /// Listens to publish.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Listeners they are spread over.
    #[arg(long, default_value_t = 5_000)]
    pub users: usize,
    /// Size of the catalogue on Kafka (`catalogue --kafka --tracks`).
    #[arg(long, default_value_t = 10_000)]
    pub tracks: usize,
    #[arg(long, default_value_t = 512)]
    pub clusters: usize,
    /// Seed of the histories (a new seed gives new event ids, so nothing is deduplicated).
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// The consumer group whose progress is timed.
    #[arg(long, default_value = cadenza_session_aggregation::GROUP)]
    pub group: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// First wait until this group has taken in the whole `track.embedded` topic (the
    /// consumer's own index must know the tracks, or the listens wait for them).
    #[arg(long)]
    pub wait_group: Option<String>,
    /// Publish, then stop without waiting for the group (to build a backlog).
    #[arg(long, conflicts_with = "drain_only")]
    pub publish_only: bool,
    /// Publish nothing: time the group from now until it has committed everything already
    /// on the topic (a backlog built with `--publish-only` while the consumer was paused:
    /// the consumer's own speed, without the generator's).
    #[arg(long)]
    pub drain_only: bool,
    /// Publish at about this many listens/s (0: as fast as possible), so that a fault
    /// scenario (`make soak`) has time to kill the consumers mid-stream.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// Committed offsets of a group (or the end offsets) summed over a topic's partitions.
struct Offsets {
    consumer: BaseConsumer,
    topic: &'static str,
    partitions: Vec<i32>,
}

impl Offsets {
    fn new(brokers: &str, group: &str, topic: &'static str) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .context("creating a Kafka client")?;
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("reading the metadata of {topic}"))?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(
            !partitions.is_empty(),
            "topic {topic} has no partitions (is the system up?)"
        );
        Ok(Offsets {
            consumer,
            topic,
            partitions,
        })
    }

    fn ends(&self) -> anyhow::Result<i64> {
        let mut sum = 0;
        for &p in &self.partitions {
            sum += self
                .consumer
                .fetch_watermarks(self.topic, p, Duration::from_secs(10))?
                .1;
        }
        Ok(sum)
    }

    fn committed(&self) -> anyhow::Result<i64> {
        let mut tpl = TopicPartitionList::new();
        for &p in &self.partitions {
            tpl.add_partition(self.topic, p);
        }
        let got = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))?;
        Ok(got
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum())
    }
}

pub fn run(args: ListensArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.count > 0 && args.users > 0,
        "--count and --users must be positive"
    );
    tokio::runtime::Runtime::new()?.block_on(async {
        if let Some(group) = &args.wait_group {
            let tracks = Offsets::new(&args.kafka, group, topics::TRACK_EMBEDDED)?;
            let end = tracks.ends()?;
            let deadline = Instant::now() + Duration::from_secs(args.timeout);
            let t = Instant::now();
            while tracks.committed()? < end {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "group {group} did not take in the {end} track events in {} s",
                    args.timeout
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            println!(
                "{group} indexed the {end} tracks in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        let offsets = Offsets::new(&args.kafka, &args.group, topics::LISTEN)?;
        if args.drain_only {
            return drain(&offsets, &args).await;
        }
        let before = offsets.ends()?;
        let committed_before = offsets.committed()?;
        anyhow::ensure!(
            args.publish_only || committed_before >= before,
            "group {} is {} listens behind before the test; let it catch up first",
            args.group,
            before - committed_before
        );
        let mut cfg = KafkaConfig::new(args.kafka.clone());
        cfg.client_id = "cadenza-load".into();
        let bus = std::sync::Arc::new(KafkaBus::new(cfg)?);
        let per_user = args.count.div_ceil(args.users);
        let now = crate::grpc::now_ms();
        let bar = ProgressBar::new(args.count as u64).with_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} listens published, {per_sec}",
        )?);
        let started = Instant::now();
        let mut published = 0usize;
        // Listeners in parallel, each one's listens in order (one key, one partition).
        let mut tasks = tokio::task::JoinSet::new();
        for u in 0..args.users {
            let n = per_user.min(args.count - published);
            if n == 0 {
                break;
            }
            if args.rate > 0 {
                // Listeners start on a schedule: `published` listens are due by now.
                let due = started + Duration::from_secs_f64(published as f64 / args.rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            published += n;
            let events: Vec<ListenRecorded> = history(u, n, args.tracks, args.clusters, args.seed)
                .into_iter()
                .enumerate()
                .map(|(j, (event_id, track_id))| ListenRecorded {
                    event_id,
                    user_id: user_id(u),
                    track_id,
                    timestamp_ms: now - (n - j) as i64 * 240_000,
                    play_fraction: 1.0,
                    skipped: false,
                    session_hint: String::new(),
                })
                .collect();
            let (bus, bar) = (bus.clone(), bar.clone());
            tasks.spawn(async move {
                for e in events {
                    bus.publish(topics::LISTEN, e.user_id.as_bytes(), e.encode_to_vec(), Vec::new())
                        .await?;
                    bar.inc(1);
                }
                anyhow::Ok(())
            });
            if tasks.len() >= 256 {
                tasks.join_next().await.expect("non-empty")??;
            }
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        bar.finish_and_clear();
        let publish_s = started.elapsed().as_secs_f64();
        let target = offsets.ends()?;
        anyhow::ensure!(
            target - before >= published as i64,
            "published {published} listens but the topic grew by {}",
            target - before
        );
        println!(
            "published {published} listens of {} listeners in {publish_s:.1} s ({:.0}/s)",
            args.users,
            published as f64 / publish_s
        );
        if args.publish_only {
            return Ok(());
        }
        wait_committed(
            &offsets,
            &args,
            committed_before,
            target,
            started,
            "aggregated and committed",
        )
        .await?;
        let total_s = started.elapsed().as_secs_f64();
        println!(
            "session aggregation: {} listens aggregated and committed in {total_s:.1} s from the first publish: {:.0} listens/s",
            target - committed_before,
            (target - committed_before) as f64 / total_s
        );
        Ok(())
    })
}

/// `--drain-only`: the time from now until the group has committed the whole topic.
async fn drain(offsets: &Offsets, args: &ListensArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (committed_before, target) = (offsets.committed()?, offsets.ends()?);
    let backlog = target - committed_before;
    wait_committed(
        offsets,
        args,
        committed_before,
        target,
        started,
        "of the backlog aggregated and committed",
    )
    .await?;
    let s = started.elapsed().as_secs_f64();
    println!(
        "session aggregation: a backlog of {backlog} listens aggregated and committed in {s:.1} s: {:.0} listens/s",
        backlog as f64 / s
    );
    Ok(())
}

/// Polls until the group has committed `target`, with a progress bar; fails after
/// `--timeout` seconds from `started`.
async fn wait_committed(
    offsets: &Offsets,
    args: &ListensArgs,
    committed_before: i64,
    target: i64,
    started: Instant,
    what: &str,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new((target - committed_before).max(0) as u64).with_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what}, {{per_sec}}"))?,
    );
    let deadline = started + Duration::from_secs(args.timeout);
    loop {
        let committed = offsets.committed()?;
        bar.set_position((committed - committed_before).max(0) as u64);
        if committed >= target {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "group {} committed {} of {} listens within {} s",
            args.group,
            committed - committed_before,
            target - committed_before,
            args.timeout
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bar.finish_and_clear();
    Ok(())
}
