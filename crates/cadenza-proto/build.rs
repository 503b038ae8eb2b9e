//! Generates the Rust types and gRPC stubs from `proto/cadenza/v1`, with protoc from the
//! `protoc-bin-vendored` crate (no system protoc needed), plus the descriptor set that server
//! reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!(): a cached build script must work from
    // whichever checkout runs it.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["common", "ingest", "recommend", "catalog", "events"]
        .map(|f| root.join(format!("cadenza/v1/{f}.proto")));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("cadenza_descriptor.bin"))
        .compile_with_config(config, &files, &[root])?;
    Ok(())
}
