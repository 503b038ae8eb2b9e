//! Checks and arithmetic shared by every implementation, so they reject the same inputs with
//! the same errors and score the same way.

use std::cmp::Ordering;

use crate::error::{IndexError, Result};
use crate::types::{CollectionSpec, Condition, Distance, Filter, PointId};

/// Longest collection name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Rejects names that cannot be a directory name everywhere (the embedded index keeps one
/// directory per collection) or a Qdrant collection name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IndexError::InvalidName(name.to_owned()))
    }
}

/// Checks everything about a spec that can be checked without the index: its name, a
/// non-zero dimension and its payload keys.
pub fn check_spec(spec: &CollectionSpec) -> Result<()> {
    check_name(&spec.name)?;
    if spec.dim == 0 {
        return Err(IndexError::InvalidRequest(format!(
            "collection {:?}: dimension must be at least 1",
            spec.name
        )));
    }
    spec.indexed_fields
        .iter()
        .try_for_each(|(key, _)| check_key(key))
}

/// Payload keys in filters and indexes are dotted names (`meta.composer`) of ASCII letters,
/// digits, `_` and `-`: the subset of Qdrant's JSON paths that needs no quoting, so every
/// implementation reads them the same way.
pub fn check_key(key: &str) -> Result<()> {
    let ok = key.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(())
    } else {
        Err(IndexError::InvalidRequest(format!(
            "payload key {key:?}: use dotted names of ASCII letters, digits, '_' and '-'"
        )))
    }
}

/// Checks every key a filter names.
pub fn check_filter(filter: &Filter) -> Result<()> {
    filter
        .must
        .iter()
        .chain(&filter.must_not)
        .try_for_each(|c| match c {
            Condition::Match { key, .. } => check_key(key),
            Condition::Range { key, gte, lte } => {
                check_key(key)?;
                // Engines disagree on what a range without bounds means (Qdrant's edge
                // engine neither includes nor excludes with it), so it is refused.
                let bounds = [gte, lte].into_iter().flatten();
                if gte.is_none() && lte.is_none() || bounds.clone().any(|b| b.is_nan()) {
                    return Err(IndexError::InvalidRequest(format!(
                        "range on {key:?} needs at least one bound, and no NaN"
                    )));
                }
                Ok(())
            }
            Condition::HasId(_) => Ok(()),
        })
}

/// Checks a vector against its collection and returns what is stored or searched: the same
/// vector, or for Cosine the unit vector in its direction. `id` is `None` for a query.
///
/// NaN and infinities are refused here because an engine would store them and then rank
/// them arbitrarily (NaN compares false with everything) — silently corrupting every later
/// search. A Cosine vector of length zero has no direction, so it is refused too.
pub fn prepare(spec: &CollectionSpec, id: Option<PointId>, vector: &[f32]) -> Result<Vec<f32>> {
    if vector.len() != spec.dim {
        return Err(IndexError::DimensionMismatch {
            collection: spec.name.clone(),
            expected: spec.dim,
            got: vector.len(),
        });
    }
    let invalid = |reason: String| IndexError::InvalidVector {
        collection: spec.name.clone(),
        id,
        reason,
    };
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(invalid(format!("component {i} is {}", vector[i])));
    }
    if spec.distance != Distance::Cosine {
        return Ok(vector.to_vec());
    }
    // f64 so that large but finite components cannot overflow the norm.
    let norm = vector
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(invalid(
            "a zero vector has no direction for cosine similarity".to_owned(),
        ));
    }
    Ok(vector
        .iter()
        .map(|&x| (f64::from(x) / norm) as f32)
        .collect())
}

/// The score of a stored vector `b` for a prepared query `a` (see [`prepare`]).
pub fn score(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => a.iter().zip(b).map(|(x, y)| x * y).sum(),
        Distance::Euclid => a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt(),
    }
}

/// Whether a hit with `score` passes a threshold (see `SearchRequest::score_threshold`).
pub fn passes(distance: Distance, score: f32, threshold: Option<f32>) -> bool {
    threshold.is_none_or(|t| {
        if distance.higher_is_better() {
            score >= t
        } else {
            score <= t
        }
    })
}

/// Best first; ties by ascending id so that results are deterministic.
pub fn better(distance: Distance, a: (f32, PointId), b: (f32, PointId)) -> Ordering {
    let by_score = if distance.higher_is_better() {
        b.0.total_cmp(&a.0)
    } else {
        a.0.total_cmp(&b.0)
    };
    by_score.then(a.1.cmp(&b.1))
}

/// Checks an existing collection against a requested spec (shared by every implementation).
pub fn check_compatible(existing: &CollectionSpec, requested: &CollectionSpec) -> Result<()> {
    if existing.dim != requested.dim {
        return Err(IndexError::DimensionMismatch {
            collection: requested.name.clone(),
            expected: existing.dim,
            got: requested.dim,
        });
    }
    if existing.distance != requested.distance {
        return Err(IndexError::DistanceMismatch {
            collection: requested.name.clone(),
            existing: existing.distance,
            requested: requested.distance,
        });
    }
    Ok(())
}

/// `existing`'s indexed fields plus those of `requested` it lacks, or `None` if none.
pub fn added_fields(
    existing: &CollectionSpec,
    requested: &CollectionSpec,
) -> Option<CollectionSpec> {
    let mut merged = existing.clone();
    for (key, kind) in &requested.indexed_fields {
        if !merged.indexed_fields.iter().any(|(k, _)| k == key) {
            merged.indexed_fields.push((key.clone(), *kind));
        }
    }
    (merged.indexed_fields.len() != existing.indexed_fields.len()).then_some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("tracks_v1-a").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(
                matches!(check_name(bad), Err(IndexError::InvalidName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_and_specs() {
        assert!(check_key("meta.composer").is_ok());
        assert!(check_key("a-b_1").is_ok());
        for bad in ["", "a..b", ".a", "a b", "a[0]", "\"q\""] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_spec(&CollectionSpec::new("c", 0, Distance::Dot)).is_err());
        let f = Filter::must_not(Condition::keyword("bad key", "x"));
        assert!(matches!(
            check_filter(&f),
            Err(IndexError::InvalidRequest(_))
        ));
    }

    #[test]
    fn prepare_checks_and_normalises() {
        let cos = CollectionSpec::new("c", 2, Distance::Cosine);
        assert_eq!(prepare(&cos, Some(1), &[3.0, 4.0]).unwrap(), vec![0.6, 0.8]);
        assert!(matches!(
            prepare(&cos, Some(1), &[1.0]),
            Err(IndexError::DimensionMismatch {
                expected: 2,
                got: 1,
                ..
            })
        ));
        for bad in [[f32::NAN, 1.0], [f32::INFINITY, 1.0], [0.0, 0.0]] {
            let err = prepare(&cos, Some(7), &bad).unwrap_err();
            assert!(
                matches!(err, IndexError::InvalidVector { id: Some(7), .. }),
                "{err}"
            );
        }
        // Huge but finite components normalise instead of overflowing.
        let big = prepare(&cos, None, &[f32::MAX, f32::MAX]).unwrap();
        assert!((big[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let dot = CollectionSpec::new("d", 2, Distance::Dot);
        assert_eq!(prepare(&dot, None, &[0.0, 0.0]).unwrap(), vec![0.0, 0.0]);
    }

    #[test]
    fn ordering_and_thresholds() {
        assert_eq!(better(Distance::Cosine, (0.9, 2), (0.1, 1)), Ordering::Less);
        assert_eq!(
            better(Distance::Euclid, (0.9, 1), (0.1, 2)),
            Ordering::Greater
        );
        assert_eq!(better(Distance::Dot, (0.5, 1), (0.5, 2)), Ordering::Less);
        assert!(passes(Distance::Cosine, 0.5, Some(0.5)));
        assert!(!passes(Distance::Cosine, 0.4, Some(0.5)));
        assert!(passes(Distance::Euclid, 0.4, Some(0.5)));
        assert!(passes(Distance::Euclid, 9.0, None));
    }
}
