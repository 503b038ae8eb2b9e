//! One partition's append-only file: record encoding, torn-tail recovery, positional reads.
//!
//! File layout: the 8-byte magic `CDZLOG01`, then records
//! `[body_len: u32 LE][crc32(body): u32 LE][body]` with
//! `body = timestamp_ms: i64 | has_key: u8 | key_len: u32 | key | payload_len: u32 | payload |
//! header_count: u32 | (name_len: u16 | name | value_len: u32 | value)*`.
//! A record's offset is its index in the file; positions are rebuilt by scanning on open.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"CDZLOG01";
const FRAME: u64 = 8;
/// Smallest valid body: timestamp, key flag, key length, payload length, header count.
const MIN_BODY: usize = 8 + 1 + 4 + 4 + 4;
/// A length above this cannot have been written by us: the tail is garbage.
const MAX_BODY: usize = 256 << 20;

/// A decoded record (without its topic/partition/offset, which the caller knows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Encode `record` as a framed, checksummed byte string ready to append.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let key = record.key.as_deref().unwrap_or_default();
    let headers_len: usize = record
        .headers
        .iter()
        .map(|(k, v)| 2 + k.len() + 4 + v.len())
        .sum();
    let body_len = MIN_BODY + key.len() + record.payload.len() + headers_len;
    let mut out = Vec::with_capacity(FRAME as usize + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // crc, filled below
    out.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    out.push(u8::from(record.key.is_some()));
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(record.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.payload);
    out.extend_from_slice(&(record.headers.len() as u32).to_le_bytes());
    for (name, value) in &record.headers {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    let crc = crc32fast::hash(&out[FRAME as usize..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Size of the encoded record, checked against limits before encoding.
pub(crate) fn encoded_len(key: &[u8], payload: &[u8], headers: &[(String, Vec<u8>)]) -> usize {
    FRAME as usize
        + MIN_BODY
        + key.len()
        + payload.len()
        + headers
            .iter()
            .map(|(k, v)| 2 + k.len() + 4 + v.len())
            .sum::<usize>()
}

/// Decode a body whose checksum has been verified. `None` means a structurally invalid body.
pub(crate) fn decode_body(body: &[u8]) -> Option<Record> {
    let mut r = Reader(body);
    let timestamp_ms = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let has_key = r.take(1)?[0] != 0;
    let key_len = r.u32()? as usize;
    let key = r.take(key_len)?.to_vec();
    let payload_len = r.u32()? as usize;
    let payload = r.take(payload_len)?.to_vec();
    let count = r.u32()? as usize;
    let mut headers = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let name_len = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        let name = String::from_utf8(r.take(name_len)?.to_vec()).ok()?;
        let value_len = r.u32()? as usize;
        headers.push((name, r.take(value_len)?.to_vec()));
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Record {
        timestamp_ms,
        key: has_key.then_some(key),
        payload,
        headers,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// An open partition file plus the byte position of every valid record in it.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub path: PathBuf,
    pub file: File,
    /// `positions[i]` is where record `i` starts.
    pub positions: Vec<u64>,
    /// End of the last valid record: where the next append goes.
    pub end: u64,
}

impl SegmentFile {
    /// Open (creating if missing) and recover: scan every record, and cut the file at the first
    /// one that is incomplete or fails its checksum — the torn tail of a write interrupted by
    /// a crash. Records before it are intact, and were the only ones ever acknowledged.
    pub fn open(path: &Path) -> Result<SegmentFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Error::io(path))?;
        let len = file.metadata().map_err(Error::io(path))?.len();
        let mut magic = [0u8; 8];
        if len < MAGIC.len() as u64 || file.read_exact_at(&mut magic, 0).is_err() {
            // New file, or one torn while being created.
            file.set_len(0).map_err(Error::io(path))?;
            file.write_all_at(MAGIC, 0).map_err(Error::io(path))?;
            file.sync_all().map_err(Error::io(path))?;
            return Ok(SegmentFile {
                path: path.to_path_buf(),
                file,
                positions: Vec::new(),
                end: MAGIC.len() as u64,
            });
        }
        if &magic != MAGIC {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a cadenza log file (bad magic)",
                ),
            });
        }
        let mut positions = Vec::new();
        let mut pos = MAGIC.len() as u64;
        while let Some(next) = valid_record_at(&file, pos, len) {
            positions.push(pos);
            pos = next;
        }
        if pos < len {
            tracing::warn!(
                path = %path.display(),
                valid_records = positions.len(),
                discarded_bytes = len - pos,
                "event log had a torn tail (interrupted write); truncating it"
            );
            file.set_len(pos).map_err(Error::io(path))?;
            file.sync_all().map_err(Error::io(path))?;
        }
        Ok(SegmentFile {
            path: path.to_path_buf(),
            file,
            positions,
            end: pos,
        })
    }

    /// Read and decode the record spanning `[start, end)`.
    pub fn read(&self, start: u64, end: u64) -> Result<Record> {
        let mut buf = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(Error::io(&self.path))?;
        decode_body(&buf[FRAME as usize..]).ok_or_else(|| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("record at byte {start} does not decode"),
            ),
        })
    }
}

/// If a complete, checksummed, decodable record starts at `pos`, the position after it.
fn valid_record_at(file: &File, pos: u64, len: u64) -> Option<u64> {
    if pos + FRAME > len {
        return None;
    }
    let mut frame = [0u8; FRAME as usize];
    file.read_exact_at(&mut frame, pos).ok()?;
    let body_len = u32::from_le_bytes(frame[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(frame[4..8].try_into().ok()?);
    if !(MIN_BODY..=MAX_BODY).contains(&body_len) || pos + FRAME + body_len as u64 > len {
        return None;
    }
    let mut body = vec![0u8; body_len];
    file.read_exact_at(&mut body, pos + FRAME).ok()?;
    if crc32fast::hash(&body) != crc || decode_body(&body).is_none() {
        return None;
    }
    Some(pos + FRAME + body_len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = Record> {
        (
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
            proptest::collection::vec(any::<u8>(), 0..256),
            proptest::collection::vec(
                (
                    "[a-z-]{0,12}",
                    proptest::collection::vec(any::<u8>(), 0..16),
                ),
                0..4,
            ),
        )
            .prop_map(|(timestamp_ms, key, payload, headers)| Record {
                timestamp_ms,
                key,
                payload,
                headers,
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(r in record()) {
            let bytes = encode(&r);
            prop_assert_eq!(bytes.len(), encoded_len(r.key.as_deref().unwrap_or_default(), &r.payload, &r.headers));
            prop_assert_eq!(decode_body(&bytes[FRAME as usize..]), Some(r));
        }

        /// Whatever the crash leaves after the last complete record, recovery keeps exactly
        /// the complete records.
        #[test]
        fn recovery_keeps_complete_records(
            records in proptest::collection::vec(record(), 1..8),
            cut in any::<prop::sample::Index>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("0.log");
            let mut bytes = MAGIC.to_vec();
            let mut ends = vec![];
            for r in &records {
                bytes.extend(encode(r));
                ends.push(bytes.len());
            }
            // Tear the last record somewhere inside it, then append garbage.
            let last_start = ends.len().checked_sub(2).map_or(MAGIC.len(), |i| ends[i]);
            let torn_at = last_start + cut.index(bytes.len() - last_start);
            bytes.truncate(torn_at);
            bytes.extend(&garbage);
            std::fs::write(&path, &bytes).unwrap();

            let seg = SegmentFile::open(&path).unwrap();
            prop_assert_eq!(seg.positions.len(), records.len() - 1);
            for (i, r) in records[..records.len() - 1].iter().enumerate() {
                let end = seg.positions.get(i + 1).copied().unwrap_or(seg.end);
                prop_assert_eq!(&seg.read(seg.positions[i], end).unwrap(), r);
            }
            prop_assert_eq!(std::fs::metadata(&path).unwrap().len(), seg.end);
        }
    }
}
