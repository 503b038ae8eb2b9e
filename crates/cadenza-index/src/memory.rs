//! [`MemoryIndex`]: exact brute force over points in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::VectorIndex;
use crate::error::{IndexError, Result};
use crate::types::{CollectionSpec, Payload, Point, PointId, ScoredPoint, SearchRequest};
use crate::vector::{
    added_fields, better, check_compatible, check_filter, check_spec, passes, prepare, score,
};

/// An exact, in-memory index: the reference semantics of [`VectorIndex`] and the index for
/// unit tests of other crates. Search scans every point, so keep it to test sizes.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    collections: RwLock<HashMap<String, Collection>>,
}

#[derive(Debug)]
struct Collection {
    spec: CollectionSpec,
    /// Ordered by id, which `scroll` needs.
    points: BTreeMap<PointId, (Vec<f32>, Payload)>,
}

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Collection>> {
        // A panic while holding the lock cannot leave a collection half-written (every
        // write validates first, then mutates), so a poisoned lock is still consistent.
        self.collections.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Collection>> {
        self.collections.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn unknown(name: &str) -> IndexError {
    IndexError::UnknownCollection(name.to_owned())
}

#[async_trait]
impl VectorIndex for MemoryIndex {
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<()> {
        check_spec(spec)?;
        let mut collections = self.write();
        match collections.get_mut(&spec.name) {
            Some(existing) => {
                check_compatible(&existing.spec, spec)?;
                if let Some(merged) = added_fields(&existing.spec, spec) {
                    existing.spec = merged;
                }
            }
            None => {
                collections.insert(
                    spec.name.clone(),
                    Collection {
                        spec: spec.clone(),
                        points: BTreeMap::new(),
                    },
                );
            }
        }
        Ok(())
    }

    async fn delete_collection(&self, name: &str) -> Result<bool> {
        Ok(self.write().remove(name).is_some())
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<()> {
        let mut collections = self.write();
        let c = collections
            .get_mut(collection)
            .ok_or_else(|| unknown(collection))?;
        let prepared = points
            .into_iter()
            .map(|p| Ok((p.id, prepare(&c.spec, Some(p.id), &p.vector)?, p.payload)))
            .collect::<Result<Vec<_>>>()?;
        for (id, vector, payload) in prepared {
            c.points.insert(id, (vector, payload));
        }
        Ok(())
    }

    async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<()> {
        let mut collections = self.write();
        let c = collections
            .get_mut(collection)
            .ok_or_else(|| unknown(collection))?;
        for id in ids {
            c.points.remove(id);
        }
        Ok(())
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[PointId],
        with_vector: bool,
    ) -> Result<Vec<Point>> {
        let collections = self.read();
        let c = collections
            .get(collection)
            .ok_or_else(|| unknown(collection))?;
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| seen.insert(**id))
            .filter_map(|id| {
                c.points.get(id).map(|(vector, payload)| Point {
                    id: *id,
                    vector: if with_vector {
                        vector.clone()
                    } else {
                        Vec::new()
                    },
                    payload: payload.clone(),
                })
            })
            .collect())
    }

    async fn search(&self, collection: &str, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let collections = self.read();
        let c = collections
            .get(collection)
            .ok_or_else(|| unknown(collection))?;
        let query = prepare(&c.spec, None, &request.vector)?;
        request.filter.as_ref().map(check_filter).transpose()?;
        let distance = c.spec.distance;
        let mut hits: Vec<(f32, PointId)> = c
            .points
            .iter()
            .filter(|(id, (_, payload))| {
                request
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(**id, payload))
            })
            .map(|(id, (vector, _))| (score(distance, &query, vector), *id))
            .filter(|(s, _)| passes(distance, *s, request.score_threshold))
            .collect();
        hits.sort_by(|a, b| better(distance, *a, *b));
        hits.truncate(request.limit);
        Ok(hits
            .into_iter()
            .map(|(score, id)| {
                let (vector, payload) = &c.points[&id];
                ScoredPoint {
                    id,
                    score,
                    payload: if request.with_payload {
                        payload.clone()
                    } else {
                        Payload::new()
                    },
                    vector: request.with_vector.then(|| vector.clone()),
                }
            })
            .collect())
    }

    async fn scroll(
        &self,
        collection: &str,
        offset: Option<PointId>,
        limit: usize,
    ) -> Result<(Vec<Point>, Option<PointId>)> {
        if limit == 0 {
            return Err(IndexError::InvalidRequest(
                "scroll limit must be at least 1".into(),
            ));
        }
        let collections = self.read();
        let c = collections
            .get(collection)
            .ok_or_else(|| unknown(collection))?;
        let mut page: Vec<Point> = c
            .points
            .range(offset.unwrap_or(0)..)
            .take(limit + 1)
            .map(|(id, (vector, payload))| Point {
                id: *id,
                vector: vector.clone(),
                payload: payload.clone(),
            })
            .collect();
        let next = (page.len() > limit)
            .then(|| page.pop().map(|p| p.id))
            .flatten();
        Ok((page, next))
    }

    async fn count(&self, collection: &str) -> Result<u64> {
        let collections = self.read();
        let c = collections
            .get(collection)
            .ok_or_else(|| unknown(collection))?;
        Ok(c.points.len() as u64)
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
