//! End to end: the real binaries as separate processes, talking over a real Apache Kafka broker
//! (distributed) or the in-process log (`cadenza up`), with the real MusiCNN model, real
//! decoding and Qdrant's engine in process. Clients use the public gRPC API only.
//!
//! The service binaries must be built first (`make test` does: `cargo build --workspace
//! --bins`); a missing one fails the test with that instruction. `CADENZA_SKIP_KAFKA=1` skips
//! the Kafka leg with a printed reason (machines without a JDK).

mod distributed;
mod embedded;
mod harness;

pub use harness::*;
