//! gRPC edge concerns shared by the servers: bearer-token authentication and request limits.

use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` when a token is configured. Health checks are
/// served by a separate, unauthenticated service so probes never need the secret.
#[derive(Clone, Default)]
pub struct BearerAuth {
    token: Option<std::sync::Arc<[u8]>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("BearerAuth")
            .field("enabled", &self.token.is_some())
            .finish()
    }
}

impl BearerAuth {
    pub fn new(token: Option<&str>) -> BearerAuth {
        BearerAuth {
            token: token.filter(|t| !t.is_empty()).map(|t| t.as_bytes().into()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// The interceptor function for `InterceptedService`.
    #[allow(clippy::result_large_err)]
    pub fn check<T>(&self, req: Request<T>) -> Result<Request<T>, Status> {
        let Some(want) = &self.token else {
            return Ok(req);
        };
        let got = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes);
        match got {
            Some(got) if constant_time_eq(got, want) => Ok(req),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata (set CADENZA_AUTH_TOKEN on the client)",
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(a) = auth {
            r.metadata_mut().insert("authorization", a.parse().unwrap());
        }
        r
    }

    #[test]
    fn token_required_only_when_configured() {
        assert!(BearerAuth::new(None).check(req(None)).is_ok());
        let auth = BearerAuth::new(Some("s3cret"));
        assert!(auth.check(req(Some("Bearer s3cret"))).is_ok());
        assert_eq!(
            auth.check(req(Some("Bearer nope"))).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let missing = auth.check(req(None)).unwrap_err();
        assert!(missing.message().contains("CADENZA_AUTH_TOKEN"));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
