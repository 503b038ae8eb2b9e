//! Index integration tests: the contract suite (`cadenza_index::contract`) run against
//! `MemoryIndex` and `EdgeIndex` always and against `QdrantIndex` when `QDRANT_URL` is set,
//! plus the embedded index's restart and crash cases, a property test and a latency probe.

mod edge;
mod latency;
mod props;

use cadenza_index::contract::Subject;
use cadenza_index::{EdgeIndex, MemoryIndex, QdrantConfig, QdrantIndex};

async fn memory_subject() -> Option<Subject> {
    Some(Subject::new(MemoryIndex::new(), "mem"))
}

async fn edge_subject() -> Option<Subject> {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = EdgeIndex::open(dir.path()).await.expect("open edge index");
    Some(Subject::new(index, "edge").keeping(dir))
}

/// `None` (with a line on stderr saying how to run it) unless `QDRANT_URL` is set.
async fn qdrant_subject() -> Option<Subject> {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("skipped: QdrantIndex contract suite (set QDRANT_URL=http://host:6334 to run)");
        return None;
    };
    let mut config = QdrantConfig::new(url);
    config.api_key = std::env::var("QDRANT_API_KEY").ok();
    let index = QdrantIndex::connect(&config).expect("qdrant client");
    // Unique per run, so concurrent runs against one server do not collide.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    Some(Subject::new(
        index,
        format!("cadenza_test_{}_{nanos}", std::process::id()),
    ))
}

mod memory {
    cadenza_index::contract_tests!(crate::memory_subject());
}

mod edge_contract {
    cadenza_index::contract_tests!(crate::edge_subject());
}

mod qdrant {
    cadenza_index::contract_tests!(crate::qdrant_subject());
}
