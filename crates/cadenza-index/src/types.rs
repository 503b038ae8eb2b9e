//! Domain types of the index seam. They carry no engine types, so services and tests never
//! see qdrant's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A point's identity. Tracks and users are numbered by the services; Qdrant also accepts
/// UUIDs, which we do not need.
pub type PointId = u64;

/// A point's payload: a JSON object (metadata, predicted tags, user state, …).
pub type Payload = Map<String, Value>;

/// One stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Identity; upserting the same id replaces vector and payload.
    pub id: PointId,
    /// The vector. For [`Distance::Cosine`] collections every implementation stores (and
    /// returns) it normalised to unit length, as Qdrant does. Empty when a read did not ask
    /// for vectors.
    pub vector: Vec<f32>,
    /// The payload, replaced as a whole on upsert (never merged).
    pub payload: Payload,
}

impl Point {
    /// A point with an empty payload.
    pub fn new(id: PointId, vector: Vec<f32>) -> Self {
        Self {
            id,
            vector,
            payload: Payload::new(),
        }
    }

    /// The same point with `payload`.
    pub fn with_payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    /// The point.
    pub id: PointId,
    /// Similarity to the query: cosine similarity or dot product (higher is better), or the
    /// Euclidean distance (lower is better) — Qdrant's convention.
    pub score: f32,
    /// Empty unless [`SearchRequest::with_payload`].
    pub payload: Payload,
    /// `Some` only if [`SearchRequest::with_vector`].
    pub vector: Option<Vec<f32>>,
}

/// How vectors are compared. Fixed when a collection is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// Cosine similarity; vectors are normalised on write, so this is a dot product of unit
    /// vectors. Higher is better. The usual choice for audio embeddings.
    Cosine,
    /// Plain dot product. Higher is better.
    Dot,
    /// Euclidean (L2) distance. Lower is better.
    Euclid,
}

impl Distance {
    /// Whether a higher score means a closer match.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Distance::Euclid)
    }
}

/// The type of a payload field to index. Filters on fields without an index still work,
/// but scan (Qdrant measured ~10× slower at p99), so index every field a service filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Exact string matches ([`MatchValue::Keyword`]).
    Keyword,
    /// Integer matches and ranges.
    Integer,
    /// Float ranges.
    Float,
    /// Boolean matches.
    Bool,
}

/// What a collection is: its name, vector size, distance and indexed payload fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionSpec {
    /// ASCII letters, digits, `_` and `-`, at most 64 characters (it names a directory in
    /// the embedded index).
    pub name: String,
    /// Vector dimension; every vector written or searched must have it.
    pub dim: usize,
    /// How vectors are compared.
    pub distance: Distance,
    /// Payload fields to index, with their types. `ensure_collection` adds indexes for
    /// fields missing from an existing collection; it never drops one.
    #[serde(default)]
    pub indexed_fields: Vec<(String, FieldKind)>,
}

impl CollectionSpec {
    /// A spec without indexed fields.
    pub fn new(name: impl Into<String>, dim: usize, distance: Distance) -> Self {
        Self {
            name: name.into(),
            dim,
            distance,
            indexed_fields: Vec::new(),
        }
    }

    /// The same spec with one more indexed field.
    pub fn index(mut self, key: impl Into<String>, kind: FieldKind) -> Self {
        self.indexed_fields.push((key.into(), kind));
        self
    }
}

/// A value an exact-match condition compares a payload field with.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchValue {
    /// A string.
    Keyword(String),
    /// An integer (a JSON number with no fractional part).
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

/// One filter condition. A payload `key` may be a dotted path (`meta.composer`); a field
/// holding an array matches if any element does (Qdrant's semantics).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field equals `value`.
    Match {
        /// Payload key.
        key: String,
        /// Value to compare with.
        value: MatchValue,
    },
    /// The point's id is one of these.
    HasId(Vec<PointId>),
    /// The field is a number within the bounds (both inclusive; `None` = unbounded on that
    /// side). At least one bound is required: engines disagree on a range without any.
    Range {
        /// Payload key.
        key: String,
        /// Lower bound, inclusive.
        gte: Option<f64>,
        /// Upper bound, inclusive.
        lte: Option<f64>,
    },
}

impl Condition {
    /// `key == value` for a string.
    pub fn keyword(key: impl Into<String>, value: impl Into<String>) -> Self {
        Condition::Match {
            key: key.into(),
            value: MatchValue::Keyword(value.into()),
        }
    }

    /// `key == value` for an integer.
    pub fn integer(key: impl Into<String>, value: i64) -> Self {
        Condition::Match {
            key: key.into(),
            value: MatchValue::Integer(value),
        }
    }

    /// `key == value` for a boolean.
    pub fn boolean(key: impl Into<String>, value: bool) -> Self {
        Condition::Match {
            key: key.into(),
            value: MatchValue::Bool(value),
        }
    }

    /// `gte <= key <= lte`.
    pub fn range(key: impl Into<String>, gte: Option<f64>, lte: Option<f64>) -> Self {
        Condition::Range {
            key: key.into(),
            gte,
            lte,
        }
    }

    /// Whether a point with this id and payload satisfies the condition. This is the
    /// reference semantics every implementation must agree with.
    pub fn matches(&self, id: PointId, payload: &Payload) -> bool {
        match self {
            Condition::HasId(ids) => ids.contains(&id),
            Condition::Match { key, value } => any_value(payload, key, &|v| match (value, v) {
                (MatchValue::Keyword(want), Value::String(have)) => want == have,
                (MatchValue::Integer(want), Value::Number(have)) => have.as_i64() == Some(*want),
                (MatchValue::Bool(want), Value::Bool(have)) => want == have,
                _ => false,
            }),
            Condition::Range { key, gte, lte } => any_value(payload, key, &|v| {
                v.as_f64()
                    .is_some_and(|x| gte.is_none_or(|lo| x >= lo) && lte.is_none_or(|hi| x <= hi))
            }),
        }
    }
}

/// Whether any value at `key` (a dotted path; arrays are searched element-wise) satisfies `f`.
fn any_value(payload: &Payload, key: &str, f: &dyn Fn(&Value) -> bool) -> bool {
    fn walk(value: &Value, path: &[&str], f: &dyn Fn(&Value) -> bool) -> bool {
        match (value, path.split_first()) {
            (Value::Array(items), _) => items.iter().any(|item| walk(item, path, f)),
            (_, None) => f(value),
            (Value::Object(map), Some((head, rest))) => {
                map.get(*head).is_some_and(|next| walk(next, rest, f))
            }
            _ => false,
        }
    }
    let path: Vec<&str> = key.split('.').collect();
    let (head, rest) = path.split_first().expect("split yields at least one part");
    payload.get(*head).is_some_and(|v| walk(v, rest, f))
}

/// A conjunction: every `must` condition holds and no `must_not` condition does. An empty
/// filter matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// All of these must hold.
    pub must: Vec<Condition>,
    /// None of these may hold.
    pub must_not: Vec<Condition>,
}

impl Filter {
    /// A filter requiring `condition`.
    pub fn must(condition: Condition) -> Self {
        Self {
            must: vec![condition],
            must_not: Vec::new(),
        }
    }

    /// A filter excluding `condition`.
    pub fn must_not(condition: Condition) -> Self {
        Self {
            must: Vec::new(),
            must_not: vec![condition],
        }
    }

    /// Adds a required condition.
    pub fn and(mut self, condition: Condition) -> Self {
        self.must.push(condition);
        self
    }

    /// Adds an excluded condition.
    pub fn and_not(mut self, condition: Condition) -> Self {
        self.must_not.push(condition);
        self
    }

    /// Whether the filter has no conditions at all.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }

    /// Whether some condition is both required and refused, so that no point can match.
    ///
    /// The engine adapters answer such a filter themselves: Qdrant's planner (in the server
    /// and in qdrant-edge 0.7) drops a `must_not` condition equal to the `must` condition it
    /// chose to iterate by, and returns the points the filter should refuse.
    pub fn admits_nothing(&self) -> bool {
        self.must.iter().any(|c| self.must_not.contains(c))
    }

    /// Reference semantics, as [`Condition::matches`].
    pub fn matches(&self, id: PointId, payload: &Payload) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
    }
}

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The query vector (same dimension as the collection; normalised for Cosine).
    pub vector: Vec<f32>,
    /// At most this many hits. Zero returns nothing.
    pub limit: usize,
    /// Only points matching this filter.
    pub filter: Option<Filter>,
    /// Return payloads with the hits.
    pub with_payload: bool,
    /// Return stored vectors with the hits.
    pub with_vector: bool,
    /// Only hits at least this similar: score ≥ threshold for Cosine and Dot, distance ≤
    /// threshold for Euclid (Qdrant's convention).
    pub score_threshold: Option<f32>,
    /// Beam width of an HNSW search (Qdrant's `hnsw_ef`; at least `limit` is used): wider is
    /// more exact and slower. `None`: the engine's default (the index's `ef_construct`, 100).
    /// Exact indexes ignore it.
    pub ef: Option<usize>,
}

impl SearchRequest {
    /// The `limit` nearest to `vector`, with payloads, without vectors, unfiltered.
    pub fn new(vector: Vec<f32>, limit: usize) -> Self {
        Self {
            vector,
            limit,
            filter: None,
            with_payload: true,
            with_vector: false,
            score_threshold: None,
            ef: None,
        }
    }

    /// The same request with an HNSW beam width (see [`SearchRequest::ef`]).
    pub fn ef(mut self, ef: Option<usize>) -> Self {
        self.ef = ef;
        self
    }

    /// The same request restricted by `filter`.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The same request with a score threshold.
    pub fn score_threshold(mut self, threshold: f32) -> Self {
        self.score_threshold = Some(threshold);
        self
    }

    /// The same request, also returning stored vectors.
    pub fn with_vector(mut self, yes: bool) -> Self {
        self.with_vector = yes;
        self
    }

    /// The same request, returning payloads or not.
    pub fn with_payload(mut self, yes: bool) -> Self {
        self.with_payload = yes;
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(v: Value) -> Payload {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn conditions_follow_qdrant_semantics() {
        let p = payload(json!({
            "genre": "baroque", "year": 1720, "tempo": 96.5, "solo": true,
            "tags": ["violin", "strings"], "meta": {"composer": "Bach"}
        }));
        assert!(Condition::keyword("genre", "baroque").matches(1, &p));
        assert!(!Condition::keyword("genre", "romantic").matches(1, &p));
        assert!(Condition::keyword("tags", "strings").matches(1, &p));
        assert!(Condition::keyword("meta.composer", "Bach").matches(1, &p));
        assert!(Condition::integer("year", 1720).matches(1, &p));
        assert!(!Condition::integer("tempo", 96).matches(1, &p));
        assert!(Condition::boolean("solo", true).matches(1, &p));
        assert!(Condition::range("tempo", Some(96.5), Some(96.5)).matches(1, &p));
        assert!(Condition::range("year", None, Some(1750.0)).matches(1, &p));
        assert!(!Condition::range("year", Some(1721.0), None).matches(1, &p));
        assert!(!Condition::range("genre", None, None).matches(1, &p));
        assert!(!Condition::keyword("missing", "x").matches(1, &p));
        assert!(Condition::HasId(vec![3, 1]).matches(1, &p));
        assert!(Filter::default().matches(9, &p));
        let f =
            Filter::must(Condition::keyword("genre", "baroque")).and_not(Condition::HasId(vec![1]));
        assert!(!f.matches(1, &p));
        assert!(f.matches(2, &p));
    }
}
