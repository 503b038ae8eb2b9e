//! What every cadenza service shares, kept out of the domain crates: telemetry (structured
//! logs, OTLP traces, Prometheus metrics), trace-context propagation through event headers,
//! graceful shutdown, and the content-addressed audio blob store.

pub mod blobs;
pub mod catalog;
pub mod consumer;
pub mod decoder;
pub mod grpc;
pub mod health;
pub mod materialise;
pub mod metrics;
pub mod propagation;
pub mod shutdown;
pub mod telemetry;
pub mod wiring;

pub use blobs::BlobStore;
pub use shutdown::Shutdown;
pub use telemetry::{TelemetryArgs, TelemetryGuard};
