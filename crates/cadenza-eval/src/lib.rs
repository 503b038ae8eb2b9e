//! Evaluation and rankers of cadenza: synthetic listeners defined on catalogue metadata,
//! temporal splits, ranking metrics with confidence intervals, the methods the ranking service
//! serves (random, popularity, KNN, multi-centroid, shallow net, BERT4Rec with and without
//! audio, personalised-popularity fusion, MMR), and the experiments that answer RQ1–RQ4 in a
//! dated report.
//!
//! Everything here is plain functions over domain types: no transport, no service. The
//! ranking service loads checkpoints written by `cadenza train` ([`methods::save_for_serving`]); the Kafka replay
//! tool feeds [`listeners::ListenGenerator`]'s events to the bus.

pub mod catalogue;
pub mod cli;
pub mod embeddings;
mod error;
pub mod evaluate;
pub mod experiment;
pub mod findings;
pub mod items;
pub mod listeners;
pub mod methods;
pub mod metrics;
pub mod plots;
pub mod probes;
mod progress;
pub mod report;
pub mod rq;
pub mod split;
pub mod synthetic;
pub mod train;

pub use error::{EvalError, Result};
