//! Track and user ids: opaque strings with a small, safe alphabet, validated once at the
//! edge so every later stage (index payload keys, Kafka keys, log fields) can trust them.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, IdKind, Result};

/// Longest id accepted, in characters (all accepted characters are ASCII, so also bytes).
pub const MAX_ID_LEN: usize = 128;

/// Checks the id rules shared by tracks, users and events: non-empty, at most 128
/// characters, only `[A-Za-z0-9._:-]` (safe in URLs, file names, Kafka keys and logs).
pub fn validate_id(kind: IdKind, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::EmptyId { kind });
    }
    if let Some(ch) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(Error::IdBadChar {
            kind,
            id: id.chars().take(MAX_ID_LEN).collect(),
            ch,
        });
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::IdTooLong {
            kind,
            len: id.len(),
            max: MAX_ID_LEN,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `id`.
            pub fn new(id: impl Into<String>) -> Result<Self> {
                let id = id.into();
                validate_id($kind, &id)?;
                Ok(Self(id))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(id: String) -> Result<Self> {
                Self::new(id)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(id: &str) -> Result<Self> {
                Self::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets maps keyed by the id be queried with a plain `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A track id (content-addressed by ingest: hex of a SHA-256 prefix, but any valid id
    /// is accepted so archives can bring their own).
    TrackId,
    IdKind::Track
);
id_type!(
    /// An opaque listener id; cadenza never interprets it.
    UserId,
    IdKind::User
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "3f2a9c", "user.name_1:eu-west", &"x".repeat(128)] {
            assert_eq!(TrackId::new(ok).unwrap().as_str(), ok);
            assert!(UserId::new(ok).is_ok());
        }
    }

    #[test]
    fn rejects_with_messages_a_person_understands() {
        assert_eq!(
            TrackId::new("").unwrap_err().to_string(),
            "track id is empty"
        );
        let long = UserId::new("x".repeat(129)).unwrap_err();
        assert_eq!(
            long.to_string(),
            "user id is 129 characters long; at most 128 are allowed"
        );
        let bad = UserId::new("a b").unwrap_err();
        assert!(bad.to_string().contains("contains ' '"), "{bad}");
        assert!(matches!(
            TrackId::new("é"),
            Err(Error::IdBadChar { ch: 'é', .. })
        ));
        assert!(TrackId::new("a/b").is_err());
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let id: TrackId = serde_json::from_str("\"t-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"t-1\"");
        assert!(serde_json::from_str::<TrackId>("\"bad id\"").is_err());
    }

    #[test]
    fn maps_keyed_by_id_answer_str_lookups() {
        let m: std::collections::BTreeMap<TrackId, u32> = [(TrackId::new("t").unwrap(), 3)].into();
        assert_eq!(m.get("t"), Some(&3));
    }
}
