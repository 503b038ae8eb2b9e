//! Conversions between this crate's types and qdrant-edge 0.7.0's. Kept apart so that a
//! version bump touches this file and little else.

use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    self as qe, FieldCondition, JsonPath, Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType,
    QueryEnum, ScoringQuery, ValueVariants, VectorInternal, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};

use crate::error::{IndexError, Result};
use crate::types::{Condition, Distance, FieldKind, Filter, MatchValue, Payload, PointId};

/// We use the engine's unnamed default vector: one dense vector per point.
pub const VECTOR_NAME: &str = qe::DEFAULT_VECTOR_NAME;

pub fn distance(d: Distance) -> qe::Distance {
    match d {
        Distance::Cosine => qe::Distance::Cosine,
        Distance::Dot => qe::Distance::Dot,
        Distance::Euclid => qe::Distance::Euclid,
    }
}

/// Candidates the beam keeps per result asked for when vectors are quantized: the best
/// `limit × OVERSAMPLING` by quantized score are re-scored with the original vectors and the
/// best `limit` of those returned.
pub const OVERSAMPLING: f64 = 4.0;

pub fn quantization(q: crate::edge::Quantization) -> Option<qe::QuantizationConfig> {
    match q {
        crate::edge::Quantization::None => None,
        crate::edge::Quantization::Int8 => Some(
            qe::ScalarQuantizationConfig {
                r#type: qe::ScalarType::Int8,
                quantile: Some(0.99),
                always_ram: Some(true),
            }
            .into(),
        ),
    }
}

pub fn field_schema(kind: FieldKind) -> PayloadFieldSchema {
    PayloadFieldSchema::FieldType(match kind {
        FieldKind::Keyword => PayloadSchemaType::Keyword,
        FieldKind::Integer => PayloadSchemaType::Integer,
        FieldKind::Float => PayloadSchemaType::Float,
        FieldKind::Bool => PayloadSchemaType::Bool,
    })
}

pub fn point_id(id: PointId) -> qe::PointId {
    qe::PointId::NumId(id)
}

/// Our ids are all numeric; a UUID could only come from someone else writing the shard.
pub fn our_id(id: qe::PointId) -> Result<PointId> {
    match id {
        qe::PointId::NumId(n) => Ok(n),
        qe::PointId::Uuid(u) => Err(IndexError::backend(
            "reading a point",
            format!("point id {u} is a UUID; cadenza only writes numeric ids"),
        )),
    }
}

pub fn point(id: PointId, vector: Vec<f32>, payload: Payload) -> qe::PointStructPersisted {
    qe::PointStructPersisted {
        id: point_id(id),
        vector: VectorStructPersisted::Single(vector),
        payload: Some(qe::Payload(payload)),
    }
}

/// The dense default vector out of whatever shape the engine returns it in.
pub fn dense(vector: Option<VectorStructInternal>) -> Option<Vec<f32>> {
    match vector? {
        VectorStructInternal::Single(v) => Some(v),
        VectorStructInternal::Named(mut named) => match named.remove(VECTOR_NAME)? {
            VectorInternal::Dense(v) => Some(v),
            _ => None,
        },
        VectorStructInternal::MultiDense(_) => None,
    }
}

pub fn payload(payload: Option<qe::Payload>) -> Payload {
    payload.map(|p| p.0).unwrap_or_default()
}

/// A payload key as the engine's JSON path (keys are checked by `vector::check_key`).
pub fn json_path(key: &str) -> Result<JsonPath> {
    key.parse()
        .map_err(|()| IndexError::InvalidRequest(format!("payload key {key:?} is not a JSON path")))
}

pub fn filter(f: &Filter) -> Result<qe::Filter> {
    let conditions = |cs: &[Condition]| -> Result<Option<Vec<qe::Condition>>> {
        if cs.is_empty() {
            return Ok(None);
        }
        cs.iter()
            .map(condition)
            .collect::<Result<Vec<_>>>()
            .map(Some)
    };
    Ok(qe::Filter {
        should: None,
        min_should: None,
        must: conditions(&f.must)?,
        must_not: conditions(&f.must_not)?,
    })
}

fn condition(c: &Condition) -> Result<qe::Condition> {
    Ok(match c {
        Condition::Match { key, value } => {
            let value = match value {
                MatchValue::Keyword(s) => ValueVariants::String(s.clone()),
                MatchValue::Integer(i) => ValueVariants::Integer(*i),
                MatchValue::Bool(b) => ValueVariants::Bool(*b),
            };
            qe::Condition::Field(FieldCondition::new_match(
                json_path(key)?,
                Match::new_value(value),
            ))
        }
        Condition::HasId(ids) => qe::Condition::HasId(ids.iter().map(|id| point_id(*id)).collect()),
        Condition::Range { key, gte, lte } => qe::Condition::Field(FieldCondition::new_range(
            json_path(key)?,
            qe::Range {
                lt: None,
                gt: None,
                gte: gte.map(OrderedFloat),
                lte: lte.map(OrderedFloat),
            },
        )),
    })
}

pub fn with_payload(yes: bool) -> WithPayloadInterface {
    WithPayloadInterface::Bool(yes)
}

pub fn with_vector(yes: bool) -> WithVector {
    WithVector::Bool(yes)
}

/// A plain nearest-neighbour query over the default vector, for ids and scores only (the
/// index fills payloads and vectors from its point cache).
pub fn nearest(
    vector: Vec<f32>,
    limit: usize,
    filter: Option<qe::Filter>,
    score_threshold: Option<f32>,
    ef: Option<usize>,
) -> qe::QueryRequest {
    qe::QueryRequest {
        prefetches: Vec::new(),
        query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
            NamedQuery::default_dense(vector),
        ))),
        filter,
        score_threshold: score_threshold.map(OrderedFloat),
        limit,
        offset: 0,
        // Quantized vectors (where a collection has them) steer the beam; the hits are always
        // re-scored with the originals, so a score is the exact similarity.
        params: Some(qe::SearchParams {
            hnsw_ef: ef.map(|ef| ef.max(limit)),
            quantization: Some(qe::QuantizationSearchParams {
                ignore: false,
                rescore: Some(true),
                oversampling: Some(OVERSAMPLING),
            }),
            ..Default::default()
        }),
        with_vector: with_vector(false),
        with_payload: with_payload(false),
    }
}
