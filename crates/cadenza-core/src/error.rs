//! The crate's one error type: every variant reads as a sentence a person can act on,
//! because these messages travel to API clients as `INVALID_ARGUMENT` details.

use std::fmt;

/// Which kind of identifier failed validation (named in the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Track,
    User,
    Event,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Track => "track",
            IdKind::User => "user",
            IdKind::Event => "event",
        })
    }
}

/// Why a domain value was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{kind} id is empty")]
    EmptyId { kind: IdKind },
    #[error("{kind} id is {len} characters long; at most {max} are allowed")]
    IdTooLong {
        kind: IdKind,
        len: usize,
        max: usize,
    },
    #[error(
        "{kind} id {id:?} contains {ch:?}; only letters, digits and the characters . _ : - are allowed"
    )]
    IdBadChar { kind: IdKind, id: String, ch: char },
    #[error("play fraction {0} is not a number between 0 and 1")]
    PlayFraction(f32),
    #[error(
        "timestamp {ts_ms} ms is not after 1970-01-01 (milliseconds since the Unix epoch expected)"
    )]
    TimestampNotPositive { ts_ms: i64 },
    #[error(
        "timestamp {ts_ms} ms lies {ahead_ms} ms in the future; at most {max_skew_ms} ms of clock skew is accepted"
    )]
    TimestampInFuture {
        ts_ms: i64,
        ahead_ms: i64,
        max_skew_ms: i64,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
