//! Vectors inside stored documents (a listener's profile and centroids) as base64 of their
//! little-endian `f32` bytes: exact, about half the text of a JSON array of the same numbers
//! (`serde_json` writes an `f32` that went through a JSON value as a 17-digit `f64`), and
//! read or written without formatting or parsing a decimal per number — which was most of
//! the cost of a state document on the listen path and in every `Recommend`. Documents
//! written before, with arrays of numbers, are read as well.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// `#[serde(serialize_with)]`: base64 of the little-endian bytes.
pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    s.serialize_str(&STANDARD.encode(bytes))
}

/// `#[serde(deserialize_with)]`: base64 as written by [`serialize`], or an array of numbers.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    struct Packed;
    impl<'de> Visitor<'de> for Packed {
        type Value = Vec<f32>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a vector: base64 of little-endian f32 bytes, or an array of numbers")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<f32>, E> {
            let bytes = STANDARD
                .decode(s)
                .map_err(|e| E::custom(format!("a vector that is not base64: {e}")))?;
            if bytes.len() % 4 != 0 {
                return Err(E::custom(format!(
                    "a vector of {} bytes is not a whole number of f32s",
                    bytes.len()
                )));
            }
            Ok(bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(x) = seq.next_element::<f32>()? {
                out.push(x);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Packed)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        #[serde(with = "super")]
        v: Vec<f32>,
    }

    #[test]
    fn vectors_round_trip_exactly_through_text_and_json_values() {
        let d = Doc {
            v: vec![
                0.1,
                -1.5e-30,
                3.4028235e38,
                f32::MIN_POSITIVE,
                0.0,
                -0.0,
                1.0 / 3.0,
            ],
        };
        let text = serde_json::to_string(&d).unwrap();
        let back: Doc = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            d.v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let value = serde_json::to_value(&d).unwrap();
        assert!(value["v"].is_string(), "{value}");
        assert_eq!(Doc::deserialize(&value).unwrap(), d);
        assert_eq!(
            serde_json::from_str::<Doc>(r#"{"v":""}"#).unwrap().v,
            Vec::<f32>::new()
        );
    }

    #[test]
    fn documents_with_arrays_of_numbers_are_still_read() {
        let old: Doc = serde_json::from_str(r#"{"v":[0.5,-2,1e-3]}"#).unwrap();
        assert_eq!(old.v, vec![0.5, -2.0, 1e-3]);
    }

    #[test]
    fn a_damaged_vector_is_refused_with_a_reason() {
        let e = serde_json::from_str::<Doc>(r#"{"v":"AAAA!"}"#).unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let e = serde_json::from_str::<Doc>(r#"{"v":"AAAAAAA="}"#).unwrap_err();
        assert!(e.to_string().contains("whole number of f32s"), "{e}");
        assert!(serde_json::from_str::<Doc>(r#"{"v":{"x":1}}"#).is_err());
    }
}
