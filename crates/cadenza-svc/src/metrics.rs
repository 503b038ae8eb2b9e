//! Prometheus metrics: a process-wide registry and a minimal `/metrics` HTTP endpoint.
//!
//! Label values are always from small fixed sets (service, stage, error kind, strategy):
//! never user or track ids, which would explode cardinality.

use std::net::SocketAddr;
use std::sync::OnceLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// The registry every cadenza metric lives in.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry::new_custom(Some("cadenza".into()), None).expect("valid prefix"))
}

type Families<C> = OnceLock<std::sync::Mutex<std::collections::HashMap<String, C>>>;

/// The family `name` from `families`, made and registered on first use (repeated calls
/// return the same family).
fn family<C>(families: &'static Families<C>, name: &str, make: impl FnOnce() -> C) -> C
where
    C: prometheus::core::Collector + Clone + 'static,
{
    let mut map = families
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_owned())
        .or_insert_with(|| {
            let c = make();
            let _ = registry().register(Box::new(c.clone()));
            c
        })
        .clone()
}

/// A counter family registered once.
pub fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    static FAMILIES: Families<IntCounterVec> = OnceLock::new();
    family(&FAMILIES, name, || {
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
    })
}

/// A gauge family registered once.
pub fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    static FAMILIES: Families<IntGaugeVec> = OnceLock::new();
    family(&FAMILIES, name, || {
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge")
    })
}

/// A latency histogram family (seconds) registered once.
pub fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    static FAMILIES: Families<HistogramVec> = OnceLock::new();
    family(&FAMILIES, name, || {
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ];
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .expect("valid histogram")
    })
}

/// The registry in Prometheus text format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry().gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Serve `GET /metrics` (anything else: 404) until shutdown. Returns the bound address.
pub async fn serve(addr: SocketAddr, shutdown: Shutdown) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = tokio::select! {
                r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                _ = shutdown.wait() => break,
            };
            tokio::spawn(async move {
                let mut req = [0u8; 1024];
                let n = sock.read(&mut req).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&req[..n]);
                let (status, body) = if head.starts_with("GET /metrics") {
                    ("200 OK", render())
                } else {
                    ("404 Not Found", "not found; try /metrics\n".to_owned())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_registered_metrics() {
        let c = counter("test_events_total", "events seen in a test", &["kind"]);
        c.with_label_values(&["ok"]).inc_by(3);
        let addr = serve("127.0.0.1:0".parse().unwrap(), Shutdown::new())
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(
            body.contains("cadenza_test_events_total{kind=\"ok\"} 3"),
            "{body}"
        );
    }
}
