//! The embedded index's own files: one directory per collection holding `spec.json` and
//! the engine's shard directory. Blocking; called from the blocking pool.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::convert;
use crate::error::{IndexError, Result};
use crate::types::CollectionSpec;
use crate::vector::check_name;

const SPEC_FILE: &str = "spec.json";
const SHARD_DIR: &str = "shard";
/// The engine reads the payload indexes of new appendable segments from this file in the
/// shard directory (`shard/files` in qdrant-edge 0.7.0).
const PAYLOAD_SCHEMA_FILE: &str = "payload_index.json";

pub fn shard_dir(collection_dir: &Path) -> PathBuf {
    collection_dir.join(SHARD_DIR)
}

/// Every complete collection under `root` (creating `root` if needed), removing directories
/// of creations that never completed.
pub fn scan(root: &Path) -> Result<Vec<(CollectionSpec, PathBuf)>> {
    fs::create_dir_all(root).map_err(IndexError::io(root))?;
    let mut found = Vec::new();
    for entry in fs::read_dir(root).map_err(IndexError::io(root))? {
        let entry = entry.map_err(IndexError::io(root))?;
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !dir.is_dir() || check_name(&name).is_err() {
            continue;
        }
        let spec_path = dir.join(SPEC_FILE);
        if !spec_path.exists() {
            tracing::warn!(dir = %dir.display(), "removing a collection whose creation never completed");
            remove_dir_if_exists(&dir)?;
            continue;
        }
        let bytes = fs::read(&spec_path).map_err(IndexError::io(&spec_path))?;
        let spec: CollectionSpec = serde_json::from_slice(&bytes)
            .map_err(|e| IndexError::backend(format!("reading {}", spec_path.display()), e))?;
        if spec.name != name {
            return Err(IndexError::backend(
                format!("reading {}", spec_path.display()),
                format!(
                    "it names collection {:?} but lives in directory {name:?}",
                    spec.name
                ),
            ));
        }
        found.push((spec, dir));
    }
    Ok(found)
}

pub fn write_spec(collection_dir: &Path, spec: &CollectionSpec) -> Result<()> {
    let json = serde_json::to_vec_pretty(spec).expect("a spec always serialises");
    write_atomically(&collection_dir.join(SPEC_FILE), &json)
}

/// `{"schema": {"<key>": "<type>"}}`, the engine's own serialisation of its payload index
/// schema, built from the engine's types so the spelling cannot drift.
pub fn write_payload_schema(shard_dir: &Path, spec: &CollectionSpec) -> Result<()> {
    let schema: Map<String, Value> = spec
        .indexed_fields
        .iter()
        .map(|(key, kind)| {
            let value = serde_json::to_value(convert::field_schema(*kind))
                .expect("a field schema always serialises");
            (key.clone(), value)
        })
        .collect();
    let json = serde_json::to_vec(&serde_json::json!({ "schema": schema }))
        .expect("JSON values always serialise");
    write_atomically(&shard_dir.join(PAYLOAD_SCHEMA_FILE), &json)
}

/// Write to a temporary file, fsync, rename over `path`, fsync the directory: readers see
/// the old file or the new one, never a torn one, even after a power cut.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp).map_err(IndexError::io(&tmp))?;
    file.write_all(bytes).map_err(IndexError::io(&tmp))?;
    file.sync_all().map_err(IndexError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(IndexError::io(path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(IndexError::io(dir))?;
    }
    Ok(())
}

pub fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(IndexError::io(dir)(e)),
        _ => Ok(()),
    }
}
