//! [`EdgeIndex`]: Qdrant's engine in process (`qdrant-edge` 0.7.0), the embedded mode.
//!
//! On disk, under the data directory, one directory per collection:
//!
//! ```text
//! <data_dir>/<collection>/spec.json   the CollectionSpec, written last on creation
//! <data_dir>/<collection>/shard/      the EdgeShard (segments, WAL, edge_config.json)
//! ```
//!
//! `spec.json` is written atomically after the shard exists, so a directory without it is
//! a creation that never completed (nobody was told it succeeded) and [`EdgeIndex::open`]
//! removes it.
//!
//! **Durability.** qdrant-edge 0.7.0 writes every operation to a WAL but never replays it
//! when a shard is loaded (0.9 does), so an operation is only safe once the shard has been
//! flushed. Every `upsert` and `delete` therefore flushes before returning: durable
//! against a process crash and a power cut. The WAL is also never truncated by 0.7.0, so it
//! grows with every write (roughly the size of the operation); we keep it because segment
//! point versions are WAL positions, and restarting them at zero would make the engine
//! ignore later updates of existing points.
//!
//! **Concurrency.** Engine calls are synchronous. Reads (search, get, scroll, count) run
//! inline on the calling task: they are in-memory work of well under a millisecond, and a
//! hop to the blocking pool per read cost more than the read itself under load (three
//! thread hand-offs per `Recommend`). Writes, `optimize` and flushes run on tokio's blocking
//! pool and are serialised by a per-collection writer lock, because the engine's `flush`
//! panics if another thread holds its WAL lock; readers never wait for a writer (the engine
//! guards its segments itself), so a write's fsync never stalls an async worker.
//!
//! **Point cache.** `get`, and the payloads and vectors of `search` hits, are served from a
//! bounded cache of points by id per collection ([`cache`]), invalidated by this index's
//! own writes; only the engine's graph search and misses read the shard.
//!
//! **Quantization.** Collections are created int8-quantized by default
//! ([`EdgeOptions::quantization`]): when a segment is optimized into an HNSW graph, the engine
//! keeps an int8 copy of its vectors, the beam is steered by those, and every search asks for
//! the best `limit × 4` (`convert::OVERSAMPLING`) candidates re-scored with the original vectors,
//! so scores are exact. The setting is written into the shard's `edge_config.json` when the
//! collection is created and kept from then on.

mod cache;
mod convert;
mod store;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use qdrant_edge::{
    self as qe, CountRequest, CreateIndex, EdgeShard, FieldIndexOperations, PointInsertOperations,
    PointOperations, ScrollRequest, UpdateOperation,
};

use self::cache::PointCache;
use crate::VectorIndex;
use crate::error::{IndexError, Result};
use crate::types::{CollectionSpec, Point, PointId, ScoredPoint, SearchRequest};
use crate::vector::{added_fields, check_compatible, check_filter, check_spec, prepare};

/// Qdrant's engine in process, persisting under a data directory. See the module docs for
/// the layout, durability and concurrency.
#[derive(Debug)]
pub struct EdgeIndex {
    root: PathBuf,
    options: EdgeOptions,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
    /// Serialises creating and deleting collections (they touch the file system).
    admin: tokio::sync::Mutex<()>,
}

/// A collection's shard borrowed for writing: the writer lock held, the shard shared.
struct Writing<'a> {
    _writer: MutexGuard<'a, ()>,
    shard: RwLockReadGuard<'a, EdgeShard>,
}

impl std::ops::Deref for Writing<'_> {
    type Target = EdgeShard;

    fn deref(&self) -> &EdgeShard {
        &self.shard
    }
}

/// Settings of an [`EdgeIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeOptions {
    /// Budget of each collection's point cache, in bytes (0: no cache).
    pub point_cache_bytes: usize,
    /// How the vectors of collections this index creates are compressed for the graph search
    /// (an existing collection keeps what it was created with).
    pub quantization: Quantization,
    /// Size in KiB from which a segment gets an HNSW graph (and its quantized vectors) when
    /// optimized; below it search is exact over the segment. `None`: the engine's default
    /// (10,000 KiB, about 12,800 vectors of 200 floats). Applies to collections this index
    /// creates.
    pub indexing_threshold_kb: Option<usize>,
}

/// Compression of a collection's vectors for the graph search. The original vectors stay
/// beside the compressed ones: every hit is re-scored with them, so scores are exact and
/// only which candidates the beam visits can differ (`cadenza-load recall` measures it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Quantization {
    /// Full-precision vectors only.
    None,
    /// Scalar int8 quantization (a quarter of the memory of f32; the 1 % extreme values per
    /// dimension are clipped), kept in RAM beside the originals. The default: on 100k tracks
    /// it cut the search's time by a third with recall@10 still 1.0 (BENCHMARKS.md).
    #[default]
    Int8,
}

impl Quantization {
    /// The names `FromStr` accepts, for help and errors.
    pub const NAMES: [&'static str; 2] = ["none", "int8"];
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
        })
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Quantization::None),
            "int8" | "scalar" => Ok(Quantization::Int8),
            _ => Err(format!(
                "unknown quantization `{s}`; known: {}",
                Quantization::NAMES.join(", ")
            )),
        }
    }
}

impl EdgeOptions {
    /// Default budget of each collection's point cache, in MiB (the `--index-cache-mb` flags).
    pub const DEFAULT_CACHE_MB: usize = 64;

    /// A point cache of `mb` MiB per collection (0: none).
    pub fn cache_mb(mb: usize) -> Self {
        EdgeOptions {
            point_cache_bytes: mb << 20,
            quantization: Quantization::default(),
            indexing_threshold_kb: None,
        }
    }

    /// The same settings with this quantization for new collections.
    pub fn quantization(self, quantization: Quantization) -> Self {
        EdgeOptions {
            quantization,
            ..self
        }
    }
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions::cache_mb(EdgeOptions::DEFAULT_CACHE_MB)
    }
}

#[derive(Debug)]
struct Collection {
    spec: RwLock<CollectionSpec>,
    dir: PathBuf,
    shard: RwLock<EdgeShard>,
    /// Serialises writers (update + flush, optimize).
    writer: Mutex<()>,
    cache: PointCache,
}

impl Collection {
    fn new(spec: CollectionSpec, dir: PathBuf, shard: EdgeShard, options: EdgeOptions) -> Self {
        Collection {
            spec: RwLock::new(spec),
            dir,
            shard: RwLock::new(shard),
            writer: Mutex::new(()),
            cache: PointCache::new(options.point_cache_bytes),
        }
    }

    fn spec(&self) -> CollectionSpec {
        self.spec.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    // A panic inside the engine (its flush `expect`s) poisons the lock; the shard itself
    // stays usable, and the next flush retries, so we carry on rather than fail forever.
    fn read(&self) -> RwLockReadGuard<'_, EdgeShard> {
        self.shard.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> Writing<'_> {
        Writing {
            _writer: self.writer.lock().unwrap_or_else(|e| e.into_inner()),
            shard: self.read(),
        }
    }

    /// Applies `op`, which writes the points `touched`, and flushes, so the write survives a
    /// crash (see the module docs). The cache forgets `touched` as soon as the engine shows
    /// the write, whether or not it succeeded (it may have applied in part).
    fn apply(&self, op: UpdateOperation, what: &str, touched: &[PointId]) -> Result<()> {
        let shard = self.write();
        let applied = shard.update(op);
        if !touched.is_empty() {
            self.cache.invalidate(touched.iter().copied());
        }
        applied.map_err(|e| IndexError::backend(format!("{what} in {:?}", self.spec().name), e))?;
        shard.flush();
        Ok(())
    }

    /// The points with these (distinct) ids that exist, in the order asked: from the cache
    /// where it has them (shared), the rest read from the shard and offered to the cache.
    /// Without `with_vector` a point may still carry its vector.
    fn points(&self, ids: &[PointId], with_vector: bool) -> Result<Vec<Arc<Point>>> {
        let lookup = self.cache.lookup(ids, with_vector);
        let missing: Vec<qe::PointId> = ids
            .iter()
            .zip(&lookup.found)
            .filter(|(_, f)| f.is_none())
            .map(|(id, _)| convert::point_id(*id))
            .collect();
        let mut read: HashMap<PointId, Arc<Point>> = HashMap::with_capacity(missing.len());
        if !missing.is_empty() {
            let records = self
                .read()
                .retrieve(
                    &missing,
                    Some(convert::with_payload(true)),
                    Some(convert::with_vector(with_vector)),
                )
                .map_err(backend("retrieving points", &self.spec().name))?;
            let points = records
                .into_iter()
                .map(|r| {
                    Ok(Arc::new(Point {
                        id: convert::our_id(r.id)?,
                        vector: convert::dense(r.vector).unwrap_or_default(),
                        payload: convert::payload(r.payload),
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            self.cache.offer(lookup.generation, &points, with_vector);
            read.extend(points.into_iter().map(|p| (p.id, p)));
        }
        Ok(ids
            .iter()
            .zip(lookup.found)
            .filter_map(|(id, f)| f.or_else(|| read.remove(id)))
            .collect())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IndexError::Task(e.to_string()))?
}

fn create_index_op(key: &str, kind: crate::FieldKind) -> Result<UpdateOperation> {
    Ok(UpdateOperation::FieldIndexOperation(
        FieldIndexOperations::CreateIndex(CreateIndex {
            field_name: convert::json_path(key)?,
            field_schema: Some(convert::field_schema(kind)),
        }),
    ))
}

impl EdgeIndex {
    /// Opens (creating it if needed) the index under `data_dir`, loading every collection
    /// found there. Blocking file I/O runs on the blocking pool.
    pub async fn open(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(data_dir, EdgeOptions::default()).await
    }

    /// [`EdgeIndex::open`] with these settings.
    pub async fn open_with(data_dir: impl AsRef<Path>, options: EdgeOptions) -> Result<Self> {
        let root = data_dir.as_ref().to_path_buf();
        let root2 = root.clone();
        let loaded = blocking(move || {
            let mut collections = HashMap::new();
            for (spec, dir) in store::scan(&root2)? {
                let shard = EdgeShard::load(&store::shard_dir(&dir), None).map_err(|e| {
                    IndexError::backend(format!("loading collection {:?}", spec.name), e)
                })?;
                tracing::debug!(collection = %spec.name, dir = %dir.display(), "loaded edge shard");
                let name = spec.name.clone();
                collections.insert(name, Arc::new(Collection::new(spec, dir, shard, options)));
            }
            Ok(collections)
        })
        .await?;
        Ok(Self {
            root,
            options,
            collections: RwLock::new(loaded),
            admin: tokio::sync::Mutex::new(()),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        self.collections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| IndexError::UnknownCollection(name.to_owned()))
    }

    fn all(&self) -> Vec<Arc<Collection>> {
        let map = self.collections.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    async fn add_fields(&self, c: Arc<Collection>, merged: CollectionSpec) -> Result<()> {
        blocking(move || {
            let old = c.spec();
            for (key, kind) in &merged.indexed_fields {
                if !old.indexed_fields.iter().any(|(k, _)| k == key) {
                    c.apply(
                        create_index_op(key, *kind)?,
                        &format!("indexing field {key:?}"),
                        &[],
                    )?;
                }
            }
            store::write_payload_schema(&store::shard_dir(&c.dir), &merged)?;
            store::write_spec(&c.dir, &merged)?;
            *c.spec.write().unwrap_or_else(|e| e.into_inner()) = merged;
            Ok(())
        })
        .await
    }

    async fn create(&self, spec: CollectionSpec) -> Result<Arc<Collection>> {
        let dir = self.root.join(&spec.name);
        let options = self.options;
        blocking(move || {
            // Not in the registry, so any directory here is an unfinished creation.
            store::remove_dir_if_exists(&dir)?;
            let shard_dir = store::shard_dir(&dir);
            std::fs::create_dir_all(&shard_dir).map_err(IndexError::io(&shard_dir))?;
            // New appendable segments take their payload indexes from this file, which
            // 0.7.0 never updates itself.
            store::write_payload_schema(&shard_dir, &spec)?;
            let mut vector =
                qe::EdgeVectorParamsBuilder::new(spec.dim, convert::distance(spec.distance));
            if let Some(q) = convert::quantization(options.quantization) {
                vector = vector.quantization_config(q);
            }
            let mut config =
                qe::EdgeConfigBuilder::new().vector(convert::VECTOR_NAME, vector.build());
            if let Some(kb) = options.indexing_threshold_kb {
                config = config.optimizers(qe::EdgeOptimizersConfig {
                    indexing_threshold: Some(kb),
                    ..Default::default()
                });
            }
            let config = config.build();
            let shard = EdgeShard::new(&shard_dir, config).map_err(|e| {
                IndexError::backend(format!("creating collection {:?}", spec.name), e)
            })?;
            let collection = Collection::new(spec.clone(), dir.clone(), shard, options);
            for (key, kind) in &spec.indexed_fields {
                collection.apply(
                    create_index_op(key, *kind)?,
                    &format!("indexing field {key:?}"),
                    &[],
                )?;
            }
            collection.write().flush();
            store::write_spec(&dir, &spec)?;
            Ok(Arc::new(collection))
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        collection: &str,
        f: impl FnOnce(&EdgeShard, &CollectionSpec) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let c = self.collection(collection)?;
        f(&c.read(), &c.spec())
    }
}

fn backend(what: &str, collection: &str) -> impl FnOnce(qe::OperationError) -> IndexError {
    let context = format!("{what} in {collection:?}");
    move |e| IndexError::backend(context, e)
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<()> {
        check_spec(spec)?;
        let _admin = self.admin.lock().await;
        if let Ok(existing) = self.collection(&spec.name) {
            let current = existing.spec();
            check_compatible(&current, spec)?;
            if let Some(merged) = added_fields(&current, spec) {
                self.add_fields(existing, merged).await?;
            }
            return Ok(());
        }
        let created = self.create(spec.clone()).await?;
        self.collections
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone(), created);
        tracing::info!(collection = %spec.name, dim = spec.dim, quantization = %self.options.quantization, "created edge collection");
        Ok(())
    }

    async fn delete_collection(&self, name: &str) -> Result<bool> {
        let _admin = self.admin.lock().await;
        let removed = self
            .collections
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let Some(c) = removed else { return Ok(false) };
        let dir = c.dir.clone();
        // Requests already holding the collection finish against the unlinked files.
        drop(c);
        blocking(move || store::remove_dir_if_exists(&dir)).await?;
        Ok(true)
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<()> {
        let c = self.collection(collection)?;
        if points.is_empty() {
            return Ok(());
        }
        blocking(move || {
            let spec = c.spec();
            let touched: Vec<PointId> = points.iter().map(|p| p.id).collect();
            let points = points
                .into_iter()
                .map(|p| {
                    Ok(convert::point(
                        p.id,
                        prepare(&spec, Some(p.id), &p.vector)?,
                        p.payload,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let op = UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(points),
            ));
            c.apply(op, "upserting points", &touched)
        })
        .await
    }

    async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<()> {
        let c = self.collection(collection)?;
        if ids.is_empty() {
            return Ok(());
        }
        let touched = ids.to_vec();
        let ids = ids.iter().map(|id| convert::point_id(*id)).collect();
        blocking(move || {
            let op = UpdateOperation::PointOperation(PointOperations::DeletePoints { ids });
            c.apply(op, "deleting points", &touched)
        })
        .await
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[PointId],
        with_vector: bool,
    ) -> Result<Vec<Point>> {
        Ok(self
            .get_shared(collection, ids, with_vector)
            .await?
            .into_iter()
            .map(|p| {
                let mut p = Arc::unwrap_or_clone(p);
                if !with_vector {
                    p.vector = Vec::new();
                }
                p
            })
            .collect())
    }

    async fn get_shared(
        &self,
        collection: &str,
        ids: &[PointId],
        with_vector: bool,
    ) -> Result<Vec<Arc<Point>>> {
        let c = self.collection(collection)?;
        let mut seen = HashSet::new();
        let ids: Vec<PointId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        c.points(&ids, with_vector)
    }

    fn shares_points(&self) -> bool {
        true
    }

    async fn search(&self, collection: &str, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let c = self.collection(collection)?;
        let query = prepare(
            &c.spec.read().unwrap_or_else(|e| e.into_inner()),
            None,
            &request.vector,
        )?;
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match request.filter.as_ref().filter(|f| !f.is_empty()) {
            Some(f) => {
                check_filter(f)?;
                if f.admits_nothing() {
                    return Ok(Vec::new());
                }
                Some(convert::filter(f)?)
            }
            None => None,
        };
        // The graph search alone; payloads and vectors come through the point cache.
        let hits = c
            .read()
            .query(convert::nearest(
                query,
                request.limit,
                filter,
                request.score_threshold,
                request.ef,
            ))
            .map_err(backend("searching", collection))?;
        let hits = hits
            .into_iter()
            .map(|h| Ok((convert::our_id(h.id)?, h.score)))
            .collect::<Result<Vec<_>>>()?;
        if !request.with_payload && !request.with_vector {
            return Ok(hits
                .into_iter()
                .map(|(id, score)| ScoredPoint {
                    id,
                    score,
                    payload: Default::default(),
                    vector: None,
                })
                .collect());
        }
        let ids: Vec<PointId> = hits.iter().map(|(id, _)| *id).collect();
        let mut points: HashMap<PointId, Arc<Point>> = c
            .points(&ids, request.with_vector)?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        // A hit deleted between the search and the read is left out, as if searched after.
        Ok(hits
            .into_iter()
            .filter_map(|(id, score)| {
                let p = points.remove(&id)?;
                Some(ScoredPoint {
                    id,
                    score,
                    payload: if request.with_payload {
                        p.payload.clone()
                    } else {
                        Default::default()
                    },
                    vector: request.with_vector.then(|| p.vector.clone()),
                })
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
        let name = collection.to_owned();
        self.read(collection, move |shard, _| {
            let (records, next) = shard
                .scroll(ScrollRequest {
                    offset: offset.map(convert::point_id),
                    limit: Some(limit),
                    filter: None,
                    with_payload: Some(convert::with_payload(true)),
                    with_vector: convert::with_vector(true),
                    order_by: None,
                })
                .map_err(backend("scrolling", &name))?;
            let points = records
                .into_iter()
                .map(|r| {
                    Ok(Point {
                        id: convert::our_id(r.id)?,
                        vector: convert::dense(r.vector).unwrap_or_default(),
                        payload: convert::payload(r.payload),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((points, next.map(convert::our_id).transpose()?))
        })
        .await
    }

    async fn count(&self, collection: &str) -> Result<u64> {
        let name = collection.to_owned();
        self.read(collection, move |shard, _| {
            let n = shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(backend("counting", &name))?;
            Ok(n as u64)
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        let all = self.all();
        blocking(move || {
            for c in all {
                c.write().flush();
            }
            Ok(())
        })
        .await
    }

    async fn optimize(&self) -> Result<()> {
        for c in self.all() {
            blocking(move || {
                let name = c.spec().name;
                let started = std::time::Instant::now();
                let shard = c.write();
                let changed = shard.optimize().map_err(backend("optimizing", &name))?;
                shard.flush();
                tracing::info!(collection = %name, changed, elapsed_ms = started.elapsed().as_millis() as u64, "optimized edge collection");
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
