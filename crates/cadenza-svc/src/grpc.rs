//! gRPC edge concerns shared by the servers: the listening server itself (TLS, limits,
//! health, reflection, graceful drain), bearer-token authentication, and per-method metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tonic::service::Routes;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::metrics;
use crate::shutdown::Shutdown;

/// Settings of a gRPC server, shared by every serving process (`CADENZA_*` in the chart).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address the gRPC API (and its health service) listens on.
    #[arg(long, env = "CADENZA_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,
    /// Bearer token every API call must carry (`authorization: Bearer …`); unset: no auth.
    /// Health checks never need it.
    #[arg(long, env = "CADENZA_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, env = "CADENZA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "CADENZA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: require client certificates signed by it (mutual TLS).
    #[arg(long, env = "CADENZA_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Largest request message accepted, in bytes (an upload chunk, a listen batch).
    #[arg(long, env = "CADENZA_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Requests served at once by this process (all connections together). One more is
    /// refused at once with RESOURCE_EXHAUSTED (load shedding: the client backs off instead
    /// of queueing behind work that will miss its deadline anyway).
    #[arg(long, env = "CADENZA_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Longest a request may take before it fails with DEADLINE_EXCEEDED, in seconds.
    #[arg(long, env = "CADENZA_REQUEST_TIMEOUT_S", default_value_t = 60)]
    pub request_timeout_s: u64,
}

impl ServerArgs {
    /// Defaults on a given address (tests, `cadenza up`).
    pub fn on(addr: SocketAddr) -> Self {
        ServerArgs {
            grpc_addr: addr,
            auth_token: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 256,
            request_timeout_s: 60,
        }
    }

    /// The interceptor for the API services.
    pub fn auth(&self) -> BearerAuth {
        BearerAuth::new(self.auth_token.as_deref())
    }

    /// Problems with these settings, each a sentence.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in [&self.tls_cert, &self.tls_key, &self.tls_client_ca]
            .into_iter()
            .flatten()
        {
            if !p.is_file() {
                out.push(format!("TLS file {} does not exist", p.display()));
            }
        }
        if self.max_message_bytes < 1024 {
            out.push(format!(
                "--max-message-bytes {} is below 1024",
                self.max_message_bytes
            ));
        }
        if self.max_concurrent_requests == 0 {
            out.push("--max-concurrent-requests must be at least 1".into());
        }
        out
    }

    fn tls(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ));
        if let Some(ca) = &self.tls_client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(std::fs::read(ca)?));
        }
        Ok(Some(tls))
    }
}

/// Accepted connections with `TCP_NODELAY` set: tonic sets it only on listeners it binds
/// itself, and without it every small response waits ~40 ms for a delayed ACK (Nagle).
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// Bind `args.grpc_addr` and serve `routes` plus `grpc.health.v1` and server reflection
/// until shutdown (readiness turns NOT_SERVING first, so load balancers drain). Returns the
/// bound address (useful with port 0) once listening; the server runs in a task.
pub async fn serve(
    args: &ServerArgs,
    routes: Routes,
    shutdown: Shutdown,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(args.grpc_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.grpc_addr))?;
    let addr = listener.local_addr()?;
    let (reporter, health) = crate::health::reporter().await;
    crate::health::drain_on_shutdown(reporter, shutdown.clone());
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cadenza_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    IN_FLIGHT.set_limit(args.max_concurrent_requests);
    let mut builder = Server::builder()
        .concurrency_limit_per_connection(args.max_concurrent_requests)
        .timeout(Duration::from_secs(args.request_timeout_s));
    if let Some(tls) = args.tls()? {
        builder = builder.tls_config(tls)?;
    }
    let routes = routes.add_service(health).add_service(reflection);
    let incoming = crate::grpc::nodelay(listener);
    tokio::spawn(async move {
        let r = builder
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async move { shutdown.wait().await })
            .await;
        if let Err(e) = r {
            tracing::error!("gRPC server stopped: {e}");
        }
    });
    tracing::info!(%addr, "gRPC listening");
    Ok(addr)
}

/// The server span of one call: named after the method, and the child of the caller's span
/// when the request carries W3C `traceparent` metadata — so one trace runs from the client
/// through this call into the events it publishes (their headers carry this span's context)
/// and on into the consumers.
pub fn server_span(method: &'static str, metadata: &tonic::metadata::MetadataMap) -> tracing::Span {
    let span = tracing::info_span!("grpc", rpc.method = method, otel.kind = "server");
    let headers: Vec<(String, Vec<u8>)> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| {
            metadata
                .get(k)
                .map(|v| (k.to_owned(), v.as_bytes().to_vec()))
        })
        .collect();
    crate::propagation::set_parent(&span, &headers);
    span
}

/// One call as it arrived: its method, its span ([`server_span`]) and the deadline the
/// client gave it (`grpc-timeout`), if any.
#[derive(Debug)]
pub struct Call {
    pub method: &'static str,
    pub span: tracing::Span,
    pub deadline: Option<Duration>,
}

/// The [`Call`] of a request to `method`.
pub fn call(method: &'static str, metadata: &tonic::metadata::MetadataMap) -> Call {
    Call {
        method,
        span: server_span(method, metadata),
        deadline: metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout),
    }
}

/// A `grpc-timeout` value (at most 8 digits and a unit: H, M, S, m, u, n) as a duration.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Head start on the client's deadline: the handler is stopped this much before it, so the
/// answer is this server's DEADLINE_EXCEEDED with the reason, not the transport's bare
/// cancellation at the deadline itself.
const DEADLINE_MARGIN: Duration = Duration::from_millis(2);

/// Runs one handler inside the call's span, counting it in
/// `cadenza_grpc_requests_total{method,code}` and timing it in
/// `cadenza_grpc_request_duration_seconds{method}`; failures are logged with their code. A
/// handler still running when the client's deadline comes is stopped (dropped: what it has
/// not published yet never is) and answered DEADLINE_EXCEEDED.
pub async fn observe<T, F>(call: Call, handler: F) -> Result<Response<T>, Status>
where
    F: Future<Output = Result<Response<T>, Status>>,
{
    use tracing::Instrument;
    let Call {
        method,
        span,
        deadline,
    } = call;
    let t0 = Instant::now();
    let Some(_slot) = IN_FLIGHT.enter() else {
        metrics::counter(
            "grpc_shed_total",
            "requests refused with RESOURCE_EXHAUSTED because the process was at its limit",
            &["method"],
        )
        .with_label_values(&[method])
        .inc();
        return Err(Status::resource_exhausted(format!(
            "server busy: {} requests in flight is the limit (CADENZA_MAX_CONCURRENT_REQUESTS); \
             retry with backoff",
            IN_FLIGHT.limit()
        )));
    };
    let handler = handler.instrument(span.clone());
    let out = match deadline {
        None => handler.await,
        Some(d) => match tokio::time::timeout(d.saturating_sub(DEADLINE_MARGIN), handler).await {
            Ok(out) => out,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{method} did not finish within the client's deadline of {d:?} \
                 (stopped after {:?}); retry with a longer deadline or when the server is less busy",
                t0.elapsed()
            ))),
        },
    };
    let _entered = span.enter();
    let code = match &out {
        Ok(_) => tonic::Code::Ok,
        Err(s) => s.code(),
    };
    metrics::counter(
        "grpc_requests_total",
        "gRPC requests by method and status code",
        &["method", "code"],
    )
    .with_label_values(&[method, &format!("{code:?}")])
    .inc();
    metrics::histogram(
        "grpc_request_duration_seconds",
        "gRPC request latency by method",
        &["method"],
    )
    .with_label_values(&[method])
    .observe(t0.elapsed().as_secs_f64());
    if let Err(s) = &out
        && !matches!(code, tonic::Code::NotFound | tonic::Code::InvalidArgument)
    {
        tracing::warn!(method, ?code, "request failed: {}", s.message());
    }
    out
}

/// Requests in flight in this process, against the configured limit.
static IN_FLIGHT: InFlight = InFlight::new(256);

/// A counter of requests in flight with a limit: [`InFlight::enter`] admits one more or
/// refuses (never waits).
#[derive(Debug)]
pub struct InFlight {
    limit: AtomicUsize,
    now: AtomicUsize,
}

/// One admitted request; leaving (drop) frees its place.
#[derive(Debug)]
pub struct Slot<'a>(&'a InFlight);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    pub const fn new(limit: usize) -> InFlight {
        InFlight {
            limit: AtomicUsize::new(limit),
            now: AtomicUsize::new(0),
        }
    }

    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Release);
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// A place for one more request, or `None` at the limit.
    pub fn enter(&self) -> Option<Slot<'_>> {
        let before = self.now.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit() {
            self.now.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self))
    }
}

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

    /// gRPC caller → this call's span → the headers of the events it publishes: one trace.
    #[test]
    fn the_callers_trace_continues_into_published_event_headers() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let trace = "0af7651916cd43dd8448eb211c80319c";
            let mut md = tonic::metadata::MetadataMap::new();
            md.insert(
                "traceparent",
                format!("00-{trace}-b7ad6b7169203331-01").parse().unwrap(),
            );
            let span = server_span("RecordListen", &md);
            let headers = span.in_scope(crate::propagation::inject_current);
            let tp = headers
                .iter()
                .find(|(k, _)| k == "traceparent")
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                .expect("a traceparent header");
            assert!(tp.contains(trace), "{tp}");
            assert!(
                !tp.contains("b7ad6b7169203331"),
                "the event's parent is this call's span: {tp}"
            );

            // Without caller metadata the call starts a trace of its own.
            let own = server_span("RecordListen", &tonic::metadata::MetadataMap::new())
                .in_scope(crate::propagation::inject_current);
            assert!(own.iter().any(|(k, v)| k == "traceparent" && !String::from_utf8_lossy(v).contains(trace)));
        });
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nonsense_is_no_deadline() {
        assert_eq!(parse_grpc_timeout("5m"), Some(Duration::from_millis(5)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "5", "m", "5x", "-5m", "123456789m", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_handler_past_the_clients_deadline_is_stopped_with_deadline_exceeded() {
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert("grpc-timeout", "20m".parse().unwrap());
        let finished = std::sync::Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let t0 = Instant::now();
        let out: Result<Response<()>, Status> = observe(call("Slow", &md), async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok(Response::new(()))
        })
        .await;
        let status = out.expect_err("past the deadline");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(
            status.message().contains("deadline of 20ms"),
            "{}",
            status.message()
        );
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert_eq!(
            finished.load(Ordering::SeqCst),
            0,
            "the handler was stopped"
        );
        // Within its deadline, or without one, a handler runs to the end.
        md.insert("grpc-timeout", "5S".parse().unwrap());
        let ok: Result<Response<u8>, Status> =
            observe(call("Quick", &md), async { Ok(Response::new(7)) }).await;
        assert_eq!(ok.unwrap().into_inner(), 7);
        let none = observe(call("Quick", &tonic::metadata::MetadataMap::new()), async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok(Response::new(8))
        })
        .await;
        assert_eq!(none.unwrap().into_inner(), 8);
    }

    #[test]
    fn in_flight_admits_up_to_the_limit_and_frees_on_drop() {
        let f = InFlight::new(2);
        let a = f.enter().expect("first");
        let b = f.enter().expect("second");
        assert!(f.enter().is_none(), "a third is shed");
        drop(a);
        let c = f.enter().expect("a place was freed");
        assert!(f.enter().is_none());
        f.set_limit(3);
        let d = f.enter().expect("the limit was raised");
        drop((b, c, d));
        f.set_limit(0);
        assert!(
            f.enter().is_some(),
            "a limit of 0 means 1: never refuse everything"
        );
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
