//! Content-addressed audio storage: a file's id is the hex SHA-256 of its bytes, so the same
//! upload twice is stored once and every service agrees on the id without coordination.
//!
//! A plain directory: a local data dir in the embedded mode, a shared volume in a cluster.
//! Writes go to a temporary file then `rename`, so a crash never leaves a partial blob under
//! its final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where the audio lives.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<BlobStore> {
        let root = root.into();
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(BlobStore { root })
    }

    /// A store to read from only (e.g. a read-only volume): creates nothing.
    pub fn from_existing(root: impl Into<PathBuf>) -> BlobStore {
        BlobStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The id of `bytes`.
    pub fn id_of(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Path of blob `id` (with its extension, kept as a decoding hint).
    pub fn path(&self, id: &str, ext: &str) -> PathBuf {
        let shard = id.get(..2).unwrap_or("xx");
        let name = if ext.is_empty() {
            id.to_owned()
        } else {
            format!("{id}.{ext}")
        };
        self.root.join(shard).join(name)
    }

    /// Store `bytes`; returns `(id, path, newly_stored)`.
    pub fn put(&self, bytes: &[u8], ext: &str) -> std::io::Result<(String, PathBuf, bool)> {
        let id = Self::id_of(bytes);
        let path = self.path(&id, &sanitize_ext(ext));
        if path.is_file() {
            return Ok((id, path, false));
        }
        std::fs::create_dir_all(path.parent().expect("sharded path"))?;
        let mut tmp = tempfile_in(&self.root.join("tmp"))?;
        tmp.1.write_all(bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, &path)?;
        Ok((id, path, true))
    }
}

/// Keep extensions to what a decoder hint needs: short, alphanumeric.
pub fn sanitize_ext(ext: &str) -> String {
    ext.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let p = dir.join(name);
    let f = std::fs::File::create(&p)?;
    Ok((p, f))
}

impl BlobStore {
    /// The stored file of blob `id`, whatever its extension.
    pub fn find(&self, id: &str) -> Option<PathBuf> {
        if id.len() < 2 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let dir = self.root.join(&id[..2]);
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n == id || n.strip_prefix(id).is_some_and(|rest| rest.starts_with('.'))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_same_id_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let (a, pa, new_a) = s.put(b"hello", "WAV").unwrap();
        let (b, pb, new_b) = s.put(b"hello", "wav").unwrap();
        assert_eq!((a.as_str(), new_a, new_b), (b.as_str(), true, false));
        assert_eq!(pa, pb);
        assert_eq!(std::fs::read(pa).unwrap(), b"hello");
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(sanitize_ext("../../etc"), "etc");
    }
}
