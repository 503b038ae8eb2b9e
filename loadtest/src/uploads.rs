//! `cadenza-load uploads`: a stream of uploads through the ingest API at a fixed rate, each
//! retried until it is acknowledged (ingest may be killed under it), then a check that every
//! acknowledged track is served by ranking — embedded by feature extraction, which may have
//! been killed too — and that no upload was lost on the way.
//!
//! The clips are synthesised (a few seconds of 16 kHz WAV, a chord with a decaying envelope
//! and a little noise, seeded per clip), so every clip has its own bytes and therefore its own
//! content-addressed track id: a retry of an upload that did land is the same track again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cadenza_proto::v1::catalog_client::CatalogClient;
use cadenza_proto::v1::ingest_client::IngestClient;
use cadenza_proto::v1::{GetTrackRequest, TrackMetadata, UploadChunk, upload_chunk};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::transport::Endpoint;

use crate::grpc::Server;

#[derive(Debug, Args)]
pub struct UploadsArgs {
    /// The ingest API (`cadenza-ingest`).
    #[command(flatten)]
    pub ingest: Server,
    /// The catalogue API that must end up serving every upload (`cadenza-ranking`).
    #[arg(long, default_value = "http://127.0.0.1:50573")]
    pub catalog: String,
    /// Clips to upload.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Uploads started per second.
    #[arg(long, default_value_t = 4.0)]
    pub rate: f64,
    /// Length of each clip in seconds.
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f64,
    /// Seed of the clips (a new seed gives new audio, so nothing is a duplicate).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Give up on one upload, or on the final check, after this many seconds.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
}

/// Clip `i` of `seed`: 16-bit PCM WAV, mono, 16 kHz.
pub fn clip(seed: u64, i: usize, seconds: f64) -> Vec<u8> {
    const RATE: u32 = 16_000;
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
    let freqs: Vec<f64> = (0..3).map(|_| rng.random_range(110.0..880.0)).collect();
    let note_s = rng.random_range(0.2..0.8);
    let n = (seconds * RATE as f64) as usize;
    let mut samples = Vec::with_capacity(n);
    for k in 0..n {
        let t = k as f64 / RATE as f64;
        let envelope = (-(t % note_s) * 4.0).exp();
        let tone: f64 = freqs
            .iter()
            .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
            .sum::<f64>()
            / freqs.len() as f64;
        let noise = rng.random_range(-0.02..0.02);
        let x = (0.6 * envelope * tone + noise).clamp(-1.0, 1.0);
        samples.push((x * i16::MAX as f64) as i16);
    }
    wav(RATE, &samples)
}

fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Whether a failed upload is worth another try: the server was gone, restarting or busy.
fn retryable(status: &tonic::Status) -> bool {
    use tonic::Code::*;
    matches!(
        status.code(),
        Unavailable
            | Unknown
            | Cancelled
            | DeadlineExceeded
            | Aborted
            | ResourceExhausted
            | Internal
    )
}

pub fn run(args: UploadsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    tokio::runtime::Runtime::new()?.block_on(async {
        // Lazy channels reconnect by themselves after the server is killed and restarted.
        let channel = Endpoint::from_shared(args.ingest.server.clone())
            .with_context(|| format!("--server {:?} is not a URL", args.ingest.server))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        let mut ingest = IngestClient::with_interceptor(channel, args.ingest.bearer()?);
        let bar = ProgressBar::new(args.count as u64).with_style(
            ProgressStyle::with_template("uploads {bar:30} {pos}/{len} {msg}")
                .expect("static template"),
        );
        let started = Instant::now();
        let period = Duration::from_secs_f64(1.0 / args.rate);
        let mut ids = Vec::with_capacity(args.count);
        let (mut retries, mut duplicates) = (0usize, 0usize);
        for i in 0..args.count {
            tokio::time::sleep_until((started + period * i as u32).into()).await;
            let bytes = clip(args.seed, i, args.seconds);
            let meta = TrackMetadata {
                title: format!("load clip {i}"),
                filename: format!("load-{}-{i:05}.wav", args.seed),
                ..Default::default()
            };
            let deadline = Instant::now() + Duration::from_secs(args.timeout);
            let reply = loop {
                let mut chunks = vec![UploadChunk {
                    chunk: Some(upload_chunk::Chunk::Metadata(meta.clone())),
                }];
                chunks.extend(bytes.chunks(256 * 1024).map(|c| UploadChunk {
                    chunk: Some(upload_chunk::Chunk::Data(c.to_vec())),
                }));
                match ingest.upload_track(tokio_stream::iter(chunks)).await {
                    Ok(r) => break r.into_inner(),
                    Err(s) if retryable(&s) && Instant::now() < deadline => {
                        retries += 1;
                        bar.set_message(format!("{retries} retried ({})", s.code()));
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(s) => return Err(s).context(format!("upload {i}")),
                }
            };
            duplicates += usize::from(reply.duplicate);
            ids.push(reply.track_id);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let distinct: BTreeSet<&String> = ids.iter().collect();
        anyhow::ensure!(
            distinct.len() == ids.len(),
            "{} clips were acknowledged under only {} track ids",
            ids.len(),
            distinct.len()
        );
        println!(
            "{} uploads acknowledged in {:.1} s ({retries} attempts retried, {duplicates} \
             answered as duplicates of an attempt that had landed)",
            ids.len(),
            started.elapsed().as_secs_f64()
        );

        // Every acknowledged upload must come out embedded at the other end.
        let catalog = Endpoint::from_shared(args.catalog.clone())
            .with_context(|| format!("--catalog {:?} is not a URL", args.catalog))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        let mut catalog = CatalogClient::with_interceptor(catalog, args.ingest.bearer()?);
        let check = Instant::now();
        let deadline = check + Duration::from_secs(args.timeout);
        let mut pending: Vec<&String> = ids.iter().collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for id in pending {
                match catalog
                    .get_track(GetTrackRequest {
                        track_id: id.clone(),
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(s) if s.code() == tonic::Code::NotFound || retryable(&s) => still.push(id),
                    Err(s) => return Err(s).context(format!("track {id}")),
                }
            }
            pending = still;
            if pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::ensure!(
            pending.is_empty(),
            "after {} s, {} of {} acknowledged uploads are not served by {} (first: {})",
            args.timeout,
            pending.len(),
            ids.len(),
            args.catalog,
            pending[0]
        );
        println!(
            "all {} acknowledged uploads embedded and served, 0 lost ({:.1} s after the last)",
            ids.len(),
            check.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_are_distinct_valid_wavs() {
        let a = clip(7, 0, 1.0);
        let b = clip(7, 1, 1.0);
        assert_ne!(a, b);
        assert_eq!(
            a,
            clip(7, 0, 1.0),
            "a clip is a function of its seed and index"
        );
        assert_eq!(&a[..4], b"RIFF");
        assert_eq!(&a[8..16], b"WAVEfmt ");
        assert_eq!(a.len(), 44 + 16_000 * 2);
        assert_eq!(
            u32::from_le_bytes(a[40..44].try_into().unwrap()) as usize,
            16_000 * 2
        );
    }
}
