//! Committed consumer-group offsets of the in-process log: one small JSON file per group,
//! replaced atomically (write a temp file, fsync, rename, fsync the directory) so a crash
//! leaves either the old or the new offsets, never a mix.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Next offset to read, per topic (partition 0 is the only one).
pub(crate) type GroupOffsets = BTreeMap<String, i64>;

pub(crate) fn path(groups_dir: &Path, group: &str) -> PathBuf {
    groups_dir.join(format!("{group}.json"))
}

/// The group's committed offsets; empty if it never committed.
pub(crate) fn load(groups_dir: &Path, group: &str) -> Result<GroupOffsets> {
    let path = path(groups_dir, group);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::CorruptOffsets {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GroupOffsets::new()),
        Err(e) => Err(Error::Io { path, source: e }),
    }
}

/// Replace the group's committed offsets with `offsets`, durably.
pub(crate) fn store(groups_dir: &Path, group: &str, offsets: &GroupOffsets) -> Result<()> {
    let path = path(groups_dir, group);
    let tmp = groups_dir.join(format!("{group}.json.tmp"));
    let bytes = serde_json::to_vec_pretty(offsets).map_err(|e| Error::CorruptOffsets {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut file = File::create(&tmp).map_err(Error::io(&tmp))?;
    file.write_all(&bytes).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(Error::io(&path))?;
    sync_dir(groups_dir)
}

/// Make a rename or create in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_load_round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "g").unwrap().is_empty());
        let mut o = GroupOffsets::new();
        o.insert("a".into(), 3);
        store(dir.path(), "g", &o).unwrap();
        o.insert("a".into(), 7);
        o.insert("b".into(), 1);
        store(dir.path(), "g", &o).unwrap();
        assert_eq!(load(dir.path(), "g").unwrap(), o);
        assert!(!dir.path().join("g.json.tmp").exists());
    }
}
