//! A bounded read-through cache of one collection's points by id, in front of the engine's
//! `retrieve`.
//!
//! Why: a `Recommend` reads the listener's state point, up to 20 history tracks and the
//! payloads of its hits; in qdrant-edge each of those is an id lookup, an lz4 block
//! decompressed and a JSON document parsed, about a third of the server's time in a profile
//! at 2,000 req/s (BENCHMARKS.md). A hit here is a hash lookup and a clone.
//!
//! Consistency: every write to the collection goes through [`EdgeIndex`](super::EdgeIndex)
//! (one process owns a data directory), which calls [`PointCache::invalidate`] with the ids
//! it touched right after the engine applied the operation. A reader that missed reads the
//! engine and offers what it read with the generation it saw *before* reading; any
//! invalidation since (of any id) bumps the generation and the offer is dropped, so a value
//! read before a write can never be cached after that write's invalidation. Once `upsert` or
//! `delete` has returned, every `get` sees its effect.
//!
//! Eviction: CLOCK (second chance) over insertion order, by an estimate of each entry's heap
//! bytes, within a budget.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::types::{Payload, Point, PointId};

#[derive(Debug)]
pub(super) struct PointCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<PointId, Entry>,
    /// Ids in insertion order, the CLOCK's hand at the front. May hold ids no longer in
    /// `map` (invalidated); they are skipped when the hand reaches them.
    order: VecDeque<PointId>,
    bytes: usize,
    generation: u64,
}

#[derive(Debug)]
struct Entry {
    point: Arc<Point>,
    /// Whether `point.vector` is the stored vector (read with it) or left empty.
    has_vector: bool,
    bytes: usize,
    referenced: bool,
}

/// What a lookup found: each id's point (in the order asked) where cached, and the generation
/// to offer the rest under once read.
pub(super) struct Lookup {
    pub found: Vec<Option<Arc<Point>>>,
    pub generation: u64,
}

impl PointCache {
    /// A cache of at most about `budget` bytes; 0 caches nothing.
    pub fn new(budget: usize) -> Self {
        PointCache {
            budget,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here can panic half-way through an update that matters: a poisoned lock
        // still guards a consistent map.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// The cached points among `ids`: with their vector if `with_vector`, otherwise with or
    /// without it (shared, not copied).
    pub fn lookup(&self, ids: &[PointId], with_vector: bool) -> Lookup {
        let mut inner = self.lock();
        let generation = inner.generation;
        let found = ids
            .iter()
            .map(|id| {
                let e = inner.map.get_mut(id)?;
                if with_vector && !e.has_vector {
                    return None;
                }
                e.referenced = true;
                Some(e.point.clone())
            })
            .collect();
        Lookup { found, generation }
    }

    /// Offers points read from the engine after a lookup that returned `generation`; kept
    /// only if nothing was invalidated since.
    pub fn offer(&self, generation: u64, points: &[Arc<Point>], with_vector: bool) {
        if !self.enabled() || points.is_empty() {
            return;
        }
        // Sized before taking the lock.
        let entries: Vec<(PointId, Entry)> = points
            .iter()
            .map(|p| {
                let bytes = point_bytes(p);
                (
                    p.id,
                    Entry {
                        point: p.clone(),
                        has_vector: with_vector,
                        bytes,
                        referenced: false,
                    },
                )
            })
            .filter(|(_, e)| e.bytes <= self.budget / 4)
            .collect();
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        for (id, entry) in entries {
            inner.bytes += entry.bytes;
            if let Some(old) = inner.map.insert(id, entry) {
                inner.bytes -= old.bytes;
            } else {
                inner.order.push_back(id);
            }
        }
        inner.evict(self.budget);
    }

    /// Forgets `ids` (written or deleted) and refuses every offer read before now.
    pub fn invalidate(&self, ids: impl IntoIterator<Item = PointId>) {
        let mut inner = self.lock();
        inner.generation += 1;
        for id in ids {
            if let Some(old) = inner.map.remove(&id) {
                inner.bytes -= old.bytes;
            }
        }
        // Ids left in `order` are skipped by the hand; rebuild it when they dominate.
        if inner.order.len() > 2 * inner.map.len() + 1024 {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|id| map.contains_key(id));
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl Inner {
    fn evict(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some(id) = self.order.pop_front() else {
                break;
            };
            let Some(e) = self.map.get_mut(&id) else {
                continue;
            };
            if e.referenced {
                e.referenced = false;
                self.order.push_back(id);
                continue;
            }
            let e = self.map.remove(&id).expect("present");
            self.bytes -= e.bytes;
        }
    }
}

/// Roughly the heap a cached point holds (the map's own overhead included).
fn point_bytes(p: &Point) -> usize {
    96 + p.vector.len() * 4 + payload_bytes(&p.payload)
}

fn payload_bytes(payload: &Payload) -> usize {
    payload
        .iter()
        .map(|(k, v)| 48 + k.len() + value_bytes(v))
        .sum()
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(|v| 8 + value_bytes(v)).sum::<usize>(),
        Value::Object(o) => o.iter().map(|(k, v)| 48 + k.len() + value_bytes(v)).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: PointId, title: &str) -> Arc<Point> {
        let mut payload = Payload::new();
        payload.insert("title".into(), Value::String(title.into()));
        Arc::new(Point {
            id,
            vector: vec![id as f32; 4],
            payload,
        })
    }

    #[test]
    fn a_read_from_before_an_invalidation_is_never_cached() {
        let cache = PointCache::new(1 << 20);
        let before = cache.lookup(&[1], true);
        assert!(before.found[0].is_none());
        // A write of point 1 lands between the engine read and the offer.
        cache.invalidate([1]);
        cache.offer(before.generation, &[point(1, "old")], true);
        assert!(
            cache.lookup(&[1], true).found[0].is_none(),
            "stale read cached"
        );
        // A read after the write is cached and served.
        let after = cache.lookup(&[1], true);
        cache.offer(after.generation, &[point(1, "new")], true);
        let hit = cache.lookup(&[1], true).found[0].clone().expect("cached");
        assert_eq!(hit.payload["title"], "new");
        assert_eq!(hit.vector, vec![1.0; 4]);
    }

    #[test]
    fn invalidation_forgets_and_vectors_are_only_promised_when_read() {
        let cache = PointCache::new(1 << 20);
        let g = cache.lookup(&[1, 2], false).generation;
        cache.offer(g, &[point(1, "a"), point(2, "b")], false);
        // Read without vectors: a lookup that needs them misses, one that does not hits.
        assert!(cache.lookup(&[1], true).found[0].is_none());
        assert!(cache.lookup(&[2], false).found[0].is_some());
        cache.invalidate([2]);
        let l = cache.lookup(&[1, 2], false);
        assert!(l.found[0].is_some() && l.found[1].is_none());
        // Cached with vectors: served both ways.
        cache.offer(l.generation, &[point(2, "b")], true);
        assert!(cache.lookup(&[2], true).found[0].is_some());
        assert!(cache.lookup(&[2], false).found[0].is_some());
    }

    #[test]
    fn the_budget_holds_and_recently_used_points_stay() {
        let one = point_bytes(&point(0, "x"));
        let cache = PointCache::new(one * 10);
        for id in 0..10 {
            let g = cache.lookup(&[id], true).generation;
            cache.offer(g, &[point(id, "x")], true);
        }
        assert_eq!(cache.bytes(), one * 10);
        // Point 0 is used; the next insertions evict others first.
        assert!(cache.lookup(&[0], true).found[0].is_some());
        for id in 10..15 {
            let g = cache.lookup(&[id], true).generation;
            cache.offer(g, &[point(id, "x")], true);
        }
        assert!(cache.bytes() <= one * 10);
        assert!(
            cache.lookup(&[0], true).found[0].is_some(),
            "a used point was evicted"
        );
        assert!(cache.lookup(&[14], true).found[0].is_some());
        let cached = (0..15)
            .filter(|id| cache.lookup(&[*id], true).found[0].is_some())
            .count();
        assert_eq!(cached, 10);
        // Nothing is cached with no budget.
        let off = PointCache::new(0);
        let g = off.lookup(&[1], true).generation;
        off.offer(g, &[point(1, "x")], true);
        assert!(off.lookup(&[1], true).found[0].is_none());
    }
}
