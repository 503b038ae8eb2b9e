//! Synthetic catalogues at scale. Vectors are clustered like real embeddings (a track is its
//! cluster's centre plus noise; uniform random vectors would be the worst case for an HNSW
//! graph and unlike any archive), and metadata follows the cluster so filters select
//! realistic shares. Track `i` is `load-0000042` and belongs to cluster `i % clusters`, so the
//! other commands can choose coherent histories without reading the catalogue back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cadenza_bus::{EventBus, KafkaBus, KafkaConfig, LogBus};
use cadenza_index::{EdgeIndex, VectorIndex};
use cadenza_proto::topics;
use cadenza_proto::v1::{TrackEmbedded, TrackMetadata};
use cadenza_svc::catalog::{track_point, tracks_spec, users_spec};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, StandardNormal};

/// Id of synthetic track `i`.
pub fn track_id(i: usize) -> String {
    format!("load-{i:07}")
}

/// The `j`-th track of cluster `c` in a catalogue of `tracks` tracks in `clusters` clusters.
pub fn member(c: usize, j: usize, tracks: usize, clusters: usize) -> usize {
    let per = tracks.div_ceil(clusters).max(1);
    let i = c + clusters * (j % per);
    if i < tracks { i } else { c % tracks }
}

#[derive(Debug, Args)]
pub struct CatalogueArgs {
    /// How many tracks.
    #[arg(long, default_value_t = 100_000)]
    pub tracks: usize,
    /// Vector width (200: MusiCNN's penultimate layer, what `cadenza up` indexes by default).
    #[arg(long, default_value_t = 200)]
    pub dim: usize,
    /// Clusters ("styles") the vectors are drawn around.
    #[arg(long, default_value_t = 512)]
    pub clusters: usize,
    /// Spread of a track around its cluster centre (the centres have unit spread per axis).
    #[arg(long, default_value_t = 0.6)]
    pub noise: f32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// A `cadenza up` data directory to write into (index points and `track.embedded` events
    /// in its event log); `cadenza up --data-dir` then serves the catalogue.
    #[arg(long, conflicts_with = "kafka", required_unless_present = "kafka")]
    pub data_dir: Option<PathBuf>,
    /// Publish `track.embedded` events to this Kafka instead (the distributed services index
    /// them themselves).
    #[arg(long)]
    pub kafka: Option<String>,
    /// Partitions of the topics when they are created on Kafka.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Skip building the HNSW graph after loading (searches then scan every point).
    #[arg(long)]
    pub no_optimize: bool,
    /// Vector compression of the catalogue's collections (`cadenza up --index-quantization`;
    /// a collection keeps the one it was created with).
    #[arg(long, default_value_t = cadenza_index::Quantization::default())]
    pub quantization: cadenza_index::Quantization,
}

const ENSEMBLES: [&str; 5] = [
    "orchestra",
    "string quartet",
    "piano trio",
    "solo",
    "chamber",
];
const LEADS: [&str; 6] = ["violin", "piano", "cello", "viola", "flute", "clarinet"];
const ERAS: [&str; 4] = ["baroque", "classical", "romantic", "modern"];

/// Everything about track `i` but its vector.
fn metadata(i: usize, c: usize) -> TrackMetadata {
    TrackMetadata {
        external_id: format!("synthetic:{i}"),
        title: format!("Synthetic piece {i}"),
        composer: format!("Composer {}", c % 97),
        era: ERAS[c % ERAS.len()].into(),
        ensemble: ENSEMBLES[(c / 4) % ENSEMBLES.len()].into(),
        lead_instrument: LEADS[(c / 3) % LEADS.len()].into(),
        tempo_bpm: 50.0 + ((c * 37 + i % 11) % 130) as f32,
        work_id: format!("work-{}", i / 4),
        ..Default::default()
    }
}

/// The events of a catalogue, generated lazily in order.
struct Generator {
    rng: StdRng,
    centres: Vec<Vec<f32>>,
    noise: f32,
    dim: usize,
}

impl Generator {
    fn new(args: &CatalogueArgs) -> Self {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let centres = (0..args.clusters.max(1))
            .map(|_| {
                (0..args.dim)
                    .map(|_| StandardNormal.sample(&mut rng))
                    .collect()
            })
            .collect();
        Generator {
            rng,
            centres,
            noise: args.noise,
            dim: args.dim,
        }
    }

    fn event(&mut self, i: usize) -> TrackEmbedded {
        let c = i % self.centres.len();
        let vector: Vec<f32> = self.centres[c]
            .iter()
            .map(|x| {
                let n: f32 = StandardNormal.sample(&mut self.rng);
                x + self.noise * n
            })
            .collect();
        TrackEmbedded {
            track_id: track_id(i),
            model: "MTT_musicnn".into(),
            vector,
            top_tags: Vec::new(),
            metadata: Some(metadata(i, c)),
            duration_s: 120.0 + self.rng.random_range(0.0..600.0),
            n_patches: 40,
            embedded_at_ms: 0,
            dims: self.dim as u32,
        }
    }
}

pub fn run(args: CatalogueArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tracks > 0 && args.dim > 0,
        "--tracks and --dim must be positive"
    );
    tokio::runtime::Runtime::new()?.block_on(build(args))
}

async fn build(args: CatalogueArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (bus, index): (Arc<dyn EventBus>, Option<Arc<EdgeIndex>>) = match &args.kafka {
        Some(brokers) => {
            let mut cfg = KafkaConfig::new(brokers.clone());
            cfg.client_id = "cadenza-load".into();
            (Arc::new(KafkaBus::new(cfg)?), None)
        }
        None => {
            let dir = args.data_dir.clone().expect("clap: data-dir or kafka");
            std::fs::create_dir_all(dir.join("index"))?;
            let bus = LogBus::open(dir.join("bus"))
                .await
                .with_context(|| format!("opening the event log in {}", dir.display()))?;
            let options = cadenza_index::EdgeOptions::default().quantization(args.quantization);
            let index = EdgeIndex::open_with(dir.join("index"), options).await?;
            index.ensure_collection(&tracks_spec(args.dim)).await?;
            index.ensure_collection(&users_spec(args.dim)).await?;
            (Arc::new(bus), Some(Arc::new(index)))
        }
    };
    bus.ensure_topics(&cadenza_svc::wiring::topic_specs(args.partitions))
        .await?;
    let bar = ProgressBar::new(args.tracks as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} tracks, {per_sec} [{elapsed} / ~{duration}]",
    )?);
    let mut generator = Generator::new(&args);
    const CHUNK: usize = 2_000;
    for start in (0..args.tracks).step_by(CHUNK) {
        let events: Vec<TrackEmbedded> = (start..(start + CHUNK).min(args.tracks))
            .map(|i| generator.event(i))
            .collect();
        if let Some(index) = &index {
            let points = events.iter().map(track_point).collect();
            index.upsert(cadenza_svc::catalog::TRACKS, points).await?;
        }
        // Concurrent publishes: the log batches them into one fsync, Kafka into one request.
        let mut tasks = tokio::task::JoinSet::new();
        for e in &events {
            let (bus, key, payload) = (bus.clone(), e.track_id.clone(), e.encode_to_vec());
            tasks.spawn(async move {
                bus.publish(topics::TRACK_EMBEDDED, key.as_bytes(), payload, Vec::new())
                    .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        bar.inc(events.len() as u64);
    }
    bar.finish_and_clear();
    let loaded = started.elapsed();
    println!(
        "{} tracks × {} dims in {:.1} s ({:.0}/s) → {}",
        args.tracks,
        args.dim,
        loaded.as_secs_f64(),
        args.tracks as f64 / loaded.as_secs_f64().max(1e-9),
        match (&args.data_dir, &args.kafka) {
            (Some(d), _) => d.display().to_string(),
            (None, Some(k)) => format!("Kafka {k}, topic {}", topics::TRACK_EMBEDDED),
            (None, None) => unreachable!(),
        }
    );
    if let Some(index) = index {
        if !args.no_optimize {
            let spinner = ProgressBar::new_spinner().with_message("building the HNSW graph");
            spinner.enable_steady_tick(Duration::from_millis(200));
            let t = Instant::now();
            index.optimize().await?;
            spinner.finish_and_clear();
            println!(
                "index optimised (HNSW, quantization {}) in {:.1} s",
                args.quantization,
                t.elapsed().as_secs_f64()
            );
        }
        index.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_stay_in_their_cluster_and_the_catalogue() {
        for (tracks, clusters) in [(1_000, 512), (100, 512), (100_000, 512), (10, 3)] {
            for c in 0..clusters.min(tracks) {
                for j in 0..50 {
                    let i = member(c, j, tracks, clusters);
                    assert!(i < tracks);
                    assert_eq!(i % clusters, c % clusters);
                }
            }
        }
    }

    #[tokio::test]
    async fn a_built_catalogue_is_searchable_and_clustered() {
        let dir = tempfile::tempdir().unwrap();
        let args = CatalogueArgs {
            tracks: 3_000,
            dim: 16,
            clusters: 30,
            noise: 0.3,
            seed: 1,
            data_dir: Some(dir.path().to_path_buf()),
            kafka: None,
            partitions: 1,
            no_optimize: false,
            quantization: Default::default(),
        };
        build(args).await.unwrap();
        let index = EdgeIndex::open(dir.path().join("index")).await.unwrap();
        assert_eq!(
            index.count(cadenza_svc::catalog::TRACKS).await.unwrap(),
            3_000
        );
        // A track's nearest neighbours are its cluster mates.
        let me = index
            .get(
                cadenza_svc::catalog::TRACKS,
                &[cadenza_svc::catalog::point_id(&track_id(42))],
                true,
            )
            .await
            .unwrap()
            .remove(0);
        let hits = index
            .search(
                cadenza_svc::catalog::TRACKS,
                &cadenza_index::SearchRequest::new(me.vector, 10).with_payload(true),
            )
            .await
            .unwrap();
        let mates = hits
            .iter()
            .filter(|h| {
                let id = cadenza_svc::catalog::payload_track_id(&h.payload).unwrap();
                id[5..].parse::<usize>().unwrap() % 30 == 12
            })
            .count();
        assert!(mates >= 9, "{mates} of 10 neighbours in the cluster");
    }
}
