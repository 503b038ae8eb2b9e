//! A topic's single partition in the in-process log: appends with group commit, reads by
//! offset.
//!
//! Appends are written at the file's end under a short lock, then made durable by one fsync
//! that covers every append waiting at that moment (group commit), and only then become
//! visible to readers — a consumer never sees an event that a crash could still take back.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use super::segment::{Record, SegmentFile};
use crate::{Error, Result};

#[derive(Debug)]
pub(crate) struct Partition {
    seg: SegmentFile,
    fsync: bool,
    writer: Mutex<Writer>,
    sync: Mutex<()>,
    visible: RwLock<Visible>,
    /// Set when an fsync failed: the kernel may have dropped the dirty pages, so nothing
    /// written since can be trusted until the log is reopened (and recovered).
    failed: AtomicBool,
}

#[derive(Debug)]
struct Writer {
    end: u64,
    next_offset: i64,
    /// Start positions of records written but not yet fsynced / visible.
    pending: Vec<u64>,
}

#[derive(Debug)]
struct Visible {
    positions: Vec<u64>,
    end: u64,
}

impl Partition {
    /// Open (and recover) the partition file at `path`.
    pub fn open(path: &Path, fsync: bool) -> Result<Partition> {
        let mut seg = SegmentFile::open(path)?;
        let positions = std::mem::take(&mut seg.positions);
        let end = seg.end;
        Ok(Partition {
            fsync,
            writer: Mutex::new(Writer {
                end,
                next_offset: positions.len() as i64,
                pending: Vec::new(),
            }),
            sync: Mutex::new(()),
            visible: RwLock::new(Visible { positions, end }),
            failed: AtomicBool::new(false),
            seg,
        })
    }

    /// Append an encoded record; returns its offset once it is durable and visible.
    /// Blocking: call from `spawn_blocking`.
    pub fn append(&self, bytes: &[u8]) -> Result<i64> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failed_error());
        }
        let (offset, my_end) = {
            let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            // A failed write leaves bytes past `end` that the next append overwrites, and that
            // recovery would cut; nothing visible changes.
            self.seg
                .file
                .write_all_at(bytes, w.end)
                .map_err(Error::io(&self.seg.path))?;
            let offset = w.next_offset;
            w.next_offset += 1;
            let start = w.end;
            w.pending.push(start);
            w.end += bytes.len() as u64;
            (offset, w.end)
        };
        let _sync = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
        if self.read_visible().end >= my_end {
            // Another appender's fsync covered this record.
            return Ok(offset);
        }
        let (end, pending) = {
            let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            (w.end, std::mem::take(&mut w.pending))
        };
        if self.fsync
            && let Err(e) = self.seg.file.sync_data()
        {
            self.failed.store(true, Ordering::Release);
            return Err(Error::io(&self.seg.path)(e));
        }
        let mut v = self.visible.write().unwrap_or_else(PoisonError::into_inner);
        v.positions.extend(pending);
        v.end = end;
        Ok(offset)
    }

    /// Number of visible records: the next offset to be read by a caught-up consumer.
    pub fn len(&self) -> i64 {
        self.read_visible().positions.len() as i64
    }

    /// The record at `offset`, or `None` if it is not (yet) visible. Reads are positional and
    /// small, normally served from the page cache, so they run on the caller's thread.
    pub fn read(&self, offset: i64) -> Option<Result<Record>> {
        let (start, end) = {
            let v = self.read_visible();
            let i = usize::try_from(offset).ok()?;
            let start = *v.positions.get(i)?;
            (start, v.positions.get(i + 1).copied().unwrap_or(v.end))
        };
        Some(self.seg.read(start, end))
    }

    fn read_visible(&self) -> std::sync::RwLockReadGuard<'_, Visible> {
        self.visible.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn failed_error(&self) -> Error {
        Error::Io {
            path: self.seg.path.clone(),
            source: std::io::Error::other(
                "an earlier fsync failed; reopen the log to recover before writing again",
            ),
        }
    }
}
