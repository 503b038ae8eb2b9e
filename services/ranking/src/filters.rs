//! The wire `Filter` (and the tracks to leave out) as index filters.
//!
//! The index seam is a conjunction (`must` / `must_not`), with no OR. A field with one value
//! becomes a `must` condition. A field with several values (an OR) is expanded into one index
//! filter per value, so the union of the searches is exact and nothing is lost to a pool
//! that ran out; only when the expansion would need more than [`MAX_ALTERNATIVES`] searches
//! are the remaining fields checked on the fetched pool instead.

use std::collections::BTreeSet;

use cadenza_core::TrackId;
use cadenza_index::{Condition, Filter, Payload, PointId};
use cadenza_proto::v1 as pb;
use cadenza_svc::catalog::point_id;
use tonic::Status;

/// Most index searches one filter expands to (per query vector).
pub(crate) const MAX_ALTERNATIVES: usize = 8;

/// A request's restrictions, ready for the index.
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    /// One index filter per combination of the expanded fields' values; a candidate may come
    /// from any of them. Never empty.
    pub alternatives: Vec<Filter>,
    /// Fields with several values that were not expanded: checked on the fetched candidates.
    pub any_of: Vec<(&'static str, Vec<String>)>,
}

impl Filters {
    /// `f` (absent = no restriction) and never any of `exclude`.
    pub fn new(f: Option<&pb::Filter>, exclude: &BTreeSet<TrackId>) -> Result<Filters, Status> {
        let mut base = Filter::default();
        if !exclude.is_empty() {
            base = base.and_not(Condition::HasId(
                exclude.iter().map(|t| point_id(t.as_str())).collect(),
            ));
        }
        let mut multi: Vec<(&'static str, Vec<String>)> = Vec::new();
        if let Some(f) = f {
            for (key, values) in [
                ("ensemble", &f.ensembles),
                ("lead_instrument", &f.lead_instruments),
                ("era", &f.eras),
                ("composer", &f.composers),
            ] {
                let values: Vec<String> = values
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                match values.as_slice() {
                    [] => {}
                    [one] => base = base.and(Condition::keyword(key, one.clone())),
                    _ => multi.push((key, values)),
                }
            }
            if let Some(range) = tempo(f.min_tempo_bpm, f.max_tempo_bpm)? {
                base = base.and(range);
            }
        }
        // Expand the smallest ORs first: the most fields fit in the budget that way.
        multi.sort_by_key(|(_, v)| v.len());
        let mut alternatives = vec![base];
        let mut any_of = Vec::new();
        for (key, values) in multi {
            if alternatives.len() * values.len() > MAX_ALTERNATIVES {
                any_of.push((key, values));
                continue;
            }
            alternatives = alternatives
                .iter()
                .flat_map(|a| {
                    values
                        .iter()
                        .map(move |v| a.clone().and(Condition::keyword(key, v.clone())))
                })
                .collect();
        }
        Ok(Filters {
            alternatives,
            any_of,
        })
    }

    /// Whether the fetched candidates still need checking (some ORs were not expanded).
    pub fn checks_pool(&self) -> bool {
        !self.any_of.is_empty()
    }

    /// Whether a candidate fetched through one of the alternatives passes the rest.
    pub fn keeps(&self, payload: &Payload) -> bool {
        self.any_of.iter().all(|(key, values)| {
            payload
                .get(*key)
                .and_then(|v| v.as_str())
                .is_some_and(|v| values.iter().any(|w| w == v))
        })
    }

    /// The whole filter on one point (for candidates that did not come from a search).
    pub fn matches(&self, id: PointId, payload: &Payload) -> bool {
        self.alternatives.iter().any(|a| a.matches(id, payload)) && self.keeps(payload)
    }
}

/// The tempo bounds as a range condition (0 = open; both open = none).
fn tempo(lo: f32, hi: f32) -> Result<Option<Condition>, Status> {
    if !(lo.is_finite() && hi.is_finite()) || lo < 0.0 || hi < 0.0 {
        return Err(Status::invalid_argument(
            "tempo bounds must be finite, non-negative BPM (0 = unbounded)",
        ));
    }
    if lo > 0.0 && hi > 0.0 && lo > hi {
        return Err(Status::invalid_argument(format!(
            "min_tempo_bpm {lo} is above max_tempo_bpm {hi}"
        )));
    }
    Ok((lo > 0.0 || hi > 0.0).then(|| {
        Condition::range(
            "tempo_bpm",
            (lo > 0.0).then_some(f64::from(lo)),
            (hi > 0.0).then_some(f64::from(hi)),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: serde_json::Value) -> Payload {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn ors_expand_into_index_searches_and_ands_combine() {
        let f = pb::Filter {
            ensembles: vec!["solo".into(), "duo".into(), "solo".into()],
            eras: vec!["baroque".into(), "romantic".into()],
            composers: vec!["Bach".into()],
            ..Default::default()
        };
        let fs = Filters::new(Some(&f), &BTreeSet::new()).unwrap();
        assert_eq!(fs.alternatives.len(), 4, "2 ensembles × 2 eras");
        assert!(!fs.checks_pool());
        let p = |ensemble: &str, era: &str, composer: &str| {
            payload(json!({"ensemble": ensemble, "era": era, "composer": composer}))
        };
        assert!(fs.matches(1, &p("duo", "romantic", "Bach")));
        assert!(!fs.matches(1, &p("trio", "romantic", "Bach")));
        assert!(!fs.matches(1, &p("solo", "classical", "Bach")));
        assert!(!fs.matches(1, &p("solo", "baroque", "Haydn")));
    }

    #[test]
    fn too_many_combinations_fall_back_to_checking_the_pool() {
        let many = |n: usize| (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>();
        let f = pb::Filter {
            ensembles: many(3),
            composers: many(5),
            ..Default::default()
        };
        let fs = Filters::new(Some(&f), &BTreeSet::new()).unwrap();
        assert_eq!(fs.alternatives.len(), 3);
        assert_eq!(fs.any_of.len(), 1);
        assert_eq!(fs.any_of[0].0, "composer");
        let ok = payload(json!({"ensemble": "v2", "composer": "v4"}));
        let not = payload(json!({"ensemble": "v2", "composer": "v9"}));
        assert!(fs.matches(1, &ok) && !fs.matches(1, &not));
    }

    #[test]
    fn exclusions_and_tempo() {
        let gone = TrackId::new("gone").unwrap();
        let f = pb::Filter {
            min_tempo_bpm: 90.0,
            ..Default::default()
        };
        let fs = Filters::new(Some(&f), &BTreeSet::from([gone])).unwrap();
        let fast = payload(json!({"tempo_bpm": 120.0}));
        assert!(fs.matches(1, &fast));
        assert!(!fs.matches(point_id("gone"), &fast));
        assert!(!fs.matches(1, &payload(json!({"tempo_bpm": 60.0}))));
        for (lo, hi) in [
            (f32::NAN, 0.0),
            (-1.0, 0.0),
            (0.0, f32::INFINITY),
            (120.0, 60.0),
        ] {
            let f = pb::Filter {
                min_tempo_bpm: lo,
                max_tempo_bpm: hi,
                ..Default::default()
            };
            let err = Filters::new(Some(&f), &BTreeSet::new()).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{lo} {hi}");
        }
    }
}
