//! [`QdrantIndex`]: a Qdrant server over gRPC (`qdrant-client`), the distributed mode.
//!
//! Writes use `wait=true`: they return once the server has applied them and written its
//! WAL (which the server replays after a crash). Vectors are checked here before they are
//! sent, exactly as the other implementations check them, so a bad vector never reaches
//! the server.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use qdrant_client::qdrant::{
    self as q, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, FieldType, GetPointsBuilder, PointStruct, PointsIdsList,
    ScrollPointsBuilder, SearchPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
    r#match::MatchValue as QMatch, point_id::PointIdOptions, vector_output,
    vectors_config::Config as VectorsConfig,
};
use qdrant_client::{Qdrant, QdrantError};

use crate::VectorIndex;
use crate::error::{IndexError, Result};
use crate::types::{
    CollectionSpec, Condition, Distance, FieldKind, Filter, MatchValue, Payload, Point, PointId,
    ScoredPoint, SearchRequest,
};
use crate::vector::{added_fields, check_compatible, check_filter, check_spec, prepare};

/// Where the server is and how to reach it.
#[derive(Clone)]
pub struct QdrantConfig {
    /// gRPC URL, e.g. `http://qdrant:6334`.
    pub url: String,
    /// API key, if the server wants one.
    pub api_key: Option<String>,
    /// Deadline of each request.
    pub timeout: Duration,
}

impl std::fmt::Debug for QdrantConfig {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl QdrantConfig {
    /// A server at `url` without an API key, 10 s per request.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A Qdrant server's collections behind [`VectorIndex`].
pub struct QdrantIndex {
    client: Qdrant,
    url: String,
    /// Specs of collections seen, so that vectors can be checked without a round trip.
    specs: RwLock<HashMap<String, CollectionSpec>>,
}

impl std::fmt::Debug for QdrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantIndex")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn backend(context: impl Into<String>) -> impl FnOnce(QdrantError) -> IndexError {
    let context = context.into();
    move |e| IndexError::backend(context, e)
}

fn is_not_found(e: &QdrantError) -> bool {
    matches!(e, QdrantError::ResponseError { status } if status.code() == tonic::Code::NotFound)
}

impl QdrantIndex {
    /// A client for the server in `config`. Connects lazily: an unreachable server shows up
    /// as a backend error on the first request.
    pub fn connect(config: &QdrantConfig) -> Result<Self> {
        let client = Qdrant::from_url(&config.url)
            .api_key(config.api_key.clone())
            .timeout(config.timeout)
            .skip_compatibility_check()
            .build()
            .map_err(backend(format!("connecting to Qdrant at {}", config.url)))?;
        Ok(Self {
            client,
            url: config.url.clone(),
            specs: RwLock::new(HashMap::new()),
        })
    }

    fn cached(&self, name: &str) -> Option<CollectionSpec> {
        self.specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn remember(&self, spec: CollectionSpec) {
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone(), spec);
    }

    /// The collection's spec, from the cache or the server.
    async fn spec(&self, name: &str) -> Result<CollectionSpec> {
        if let Some(spec) = self.cached(name) {
            return Ok(spec);
        }
        let spec = self
            .fetch_spec(name)
            .await?
            .ok_or_else(|| IndexError::UnknownCollection(name.to_owned()))?;
        self.remember(spec.clone());
        Ok(spec)
    }

    async fn fetch_spec(&self, name: &str) -> Result<Option<CollectionSpec>> {
        let info = match self.client.collection_info(name).await {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(backend(format!("reading collection {name:?}"))(e)),
        };
        let bad = |what: &str| {
            IndexError::backend(
                format!("reading collection {name:?}"),
                format!("{what}: cadenza only creates single unnamed dense vectors"),
            )
        };
        let info = info.result.ok_or_else(|| bad("no collection info"))?;
        let params = info
            .config
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config);
        let Some(VectorsConfig::Params(params)) = params else {
            return Err(bad("named or missing vector config"));
        };
        let distance = match q::Distance::try_from(params.distance) {
            Ok(q::Distance::Cosine) => Distance::Cosine,
            Ok(q::Distance::Dot) => Distance::Dot,
            Ok(q::Distance::Euclid) => Distance::Euclid,
            _ => return Err(bad("unsupported distance")),
        };
        let indexed_fields = info
            .payload_schema
            .into_iter()
            .filter_map(|(key, schema)| {
                let kind = match FieldType::try_from(schema.data_type).ok()? {
                    FieldType::Keyword => FieldKind::Keyword,
                    FieldType::Integer => FieldKind::Integer,
                    FieldType::Float => FieldKind::Float,
                    FieldType::Bool => FieldKind::Bool,
                    _ => return None,
                };
                Some((key, kind))
            })
            .collect();
        Ok(Some(CollectionSpec {
            name: name.to_owned(),
            dim: params.size as usize,
            distance,
            indexed_fields,
        }))
    }

    async fn create_field_index(&self, collection: &str, key: &str, kind: FieldKind) -> Result<()> {
        let field_type = match kind {
            FieldKind::Keyword => FieldType::Keyword,
            FieldKind::Integer => FieldType::Integer,
            FieldKind::Float => FieldType::Float,
            FieldKind::Bool => FieldType::Bool,
        };
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(collection, key, field_type).wait(true),
            )
            .await
            .map_err(backend(format!("indexing field {key:?} of {collection:?}")))?;
        Ok(())
    }
}

fn point_id(id: PointId) -> q::PointId {
    id.into()
}

fn our_id(id: Option<q::PointId>) -> Result<PointId> {
    match id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Num(n)) => Ok(n),
        other => Err(IndexError::backend(
            "reading a point",
            format!("point id {other:?} is not numeric; cadenza only writes numeric ids"),
        )),
    }
}

fn payload(p: HashMap<String, q::Value>) -> Payload {
    p.into_iter().map(|(k, v)| (k, v.into_json())).collect()
}

fn dense(v: Option<q::VectorsOutput>) -> Option<Vec<f32>> {
    match v?.get_vector()? {
        vector_output::Vector::Dense(d) => Some(d.data),
        _ => None,
    }
}

fn filter(f: &Filter) -> q::Filter {
    let conditions = |cs: &[Condition]| cs.iter().map(condition).collect::<Vec<_>>();
    q::Filter {
        must: conditions(&f.must),
        must_not: conditions(&f.must_not),
        ..Default::default()
    }
}

fn condition(c: &Condition) -> q::Condition {
    match c {
        Condition::Match { key, value } => {
            // Explicit variants: the client's `From<String>` turns strings with spaces into
            // full-text matches.
            let value = match value {
                MatchValue::Keyword(s) => QMatch::Keyword(s.clone()),
                MatchValue::Integer(i) => QMatch::Integer(*i),
                MatchValue::Bool(b) => QMatch::Boolean(*b),
            };
            q::Condition::matches(key.clone(), value)
        }
        Condition::HasId(ids) => q::Condition::has_id(ids.iter().copied()),
        Condition::Range { key, gte, lte } => q::Condition::range(
            key.clone(),
            q::Range {
                gte: *gte,
                lte: *lte,
                ..Default::default()
            },
        ),
    }
}

#[async_trait]
impl VectorIndex for QdrantIndex {
    async fn ensure_collection(&self, spec: &CollectionSpec) -> Result<()> {
        check_spec(spec)?;
        let name = &spec.name;
        let current = match self.fetch_spec(name).await? {
            Some(existing) => {
                check_compatible(&existing, spec)?;
                existing
            }
            None => {
                let distance = match spec.distance {
                    Distance::Cosine => q::Distance::Cosine,
                    Distance::Dot => q::Distance::Dot,
                    Distance::Euclid => q::Distance::Euclid,
                };
                let created = self
                    .client
                    .create_collection(
                        CreateCollectionBuilder::new(name.clone())
                            .vectors_config(VectorParamsBuilder::new(spec.dim as u64, distance)),
                    )
                    .await;
                match created {
                    Ok(_) => {}
                    // Someone created it between our check and now: check theirs.
                    Err(e) => match self.fetch_spec(name).await? {
                        Some(existing) => check_compatible(&existing, spec)?,
                        None => return Err(backend(format!("creating collection {name:?}"))(e)),
                    },
                }
                CollectionSpec {
                    indexed_fields: Vec::new(),
                    ..spec.clone()
                }
            }
        };
        let merged = added_fields(&current, spec).unwrap_or(current.clone());
        for (key, kind) in &merged.indexed_fields {
            if !current.indexed_fields.iter().any(|(k, _)| k == key) {
                self.create_field_index(name, key, *kind).await?;
            }
        }
        self.remember(merged);
        Ok(())
    }

    async fn delete_collection(&self, name: &str) -> Result<bool> {
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let existed = self
            .client
            .collection_exists(name)
            .await
            .map_err(backend(format!("checking collection {name:?}")))?;
        if existed {
            self.client
                .delete_collection(name)
                .await
                .map_err(backend(format!("deleting collection {name:?}")))?;
        }
        Ok(existed)
    }

    async fn upsert(&self, collection: &str, points: Vec<Point>) -> Result<()> {
        let spec = self.spec(collection).await?;
        if points.is_empty() {
            return Ok(());
        }
        let points = points
            .into_iter()
            .map(|p| {
                let v = prepare(&spec, Some(p.id), &p.vector)?;
                Ok(PointStruct::new(
                    p.id,
                    v,
                    qdrant_client::Payload::from(p.payload),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.client
            .upsert_points(UpsertPointsBuilder::new(collection, points).wait(true))
            .await
            .map_err(backend(format!("upserting points in {collection:?}")))?;
        Ok(())
    }

    async fn delete(&self, collection: &str, ids: &[PointId]) -> Result<()> {
        self.spec(collection).await?;
        if ids.is_empty() {
            return Ok(());
        }
        let ids = PointsIdsList {
            ids: ids.iter().map(|id| point_id(*id)).collect(),
        };
        self.client
            .delete_points(DeletePointsBuilder::new(collection).points(ids).wait(true))
            .await
            .map_err(backend(format!("deleting points in {collection:?}")))?;
        Ok(())
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[PointId],
        with_vector: bool,
    ) -> Result<Vec<Point>> {
        self.spec(collection).await?;
        let mut seen = HashSet::new();
        let ids: Vec<PointId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let response = self
            .client
            .get_points(
                GetPointsBuilder::new(
                    collection,
                    ids.iter().map(|id| point_id(*id)).collect::<Vec<_>>(),
                )
                .with_payload(true)
                .with_vectors(with_vector),
            )
            .await
            .map_err(backend(format!("retrieving points in {collection:?}")))?;
        let mut found: HashMap<PointId, Point> = HashMap::new();
        for r in response.result {
            let id = our_id(r.id)?;
            found.insert(
                id,
                Point {
                    id,
                    vector: dense(r.vectors).unwrap_or_default(),
                    payload: payload(r.payload),
                },
            );
        }
        // The server answers in its own order; ours is the order asked.
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn search(&self, collection: &str, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let spec = self.spec(collection).await?;
        let query = prepare(&spec, None, &request.vector)?;
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let mut search = SearchPointsBuilder::new(collection, query, request.limit as u64)
            .with_payload(request.with_payload)
            .with_vectors(request.with_vector);
        if let Some(f) = request.filter.as_ref().filter(|f| !f.is_empty()) {
            check_filter(f)?;
            if f.admits_nothing() {
                return Ok(Vec::new());
            }
            search = search.filter(filter(f));
        }
        if let Some(ef) = request.ef {
            search = search.params(
                qdrant_client::qdrant::SearchParamsBuilder::default()
                    .hnsw_ef(ef.max(request.limit) as u64),
            );
        }
        if let Some(t) = request.score_threshold {
            search = search.score_threshold(t);
        }
        let response = self
            .client
            .search_points(search)
            .await
            .map_err(backend(format!("searching {collection:?}")))?;
        response
            .result
            .into_iter()
            .map(|h| {
                Ok(ScoredPoint {
                    id: our_id(h.id)?,
                    score: h.score,
                    payload: payload(h.payload),
                    vector: dense(h.vectors),
                })
            })
            .collect()
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
        self.spec(collection).await?;
        let mut scroll = ScrollPointsBuilder::new(collection)
            .limit(u32::try_from(limit).unwrap_or(u32::MAX))
            .with_payload(true)
            .with_vectors(true);
        if let Some(offset) = offset {
            scroll = scroll.offset(point_id(offset));
        }
        let response = self
            .client
            .scroll(scroll)
            .await
            .map_err(backend(format!("scrolling {collection:?}")))?;
        let points = response
            .result
            .into_iter()
            .map(|r| {
                Ok(Point {
                    id: our_id(r.id)?,
                    vector: dense(r.vectors).unwrap_or_default(),
                    payload: payload(r.payload),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next = response
            .next_page_offset
            .map(|id| our_id(Some(id)))
            .transpose()?;
        Ok((points, next))
    }

    async fn count(&self, collection: &str) -> Result<u64> {
        self.spec(collection).await?;
        let response = self
            .client
            .count(CountPointsBuilder::new(collection).exact(true))
            .await
            .map_err(backend(format!("counting {collection:?}")))?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    async fn flush(&self) -> Result<()> {
        // Every write waited for the server's WAL.
        Ok(())
    }
}
