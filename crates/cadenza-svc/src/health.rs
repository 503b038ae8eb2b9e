//! gRPC health (`grpc.health.v1`) for every process, served without authentication.
//!
//! Two services, as the Helm chart's probes expect: `""` is SERVING as soon as the server is
//! up and never depends on Kafka or Qdrant (liveness: restarting would not fix a broker
//! outage); `readiness` is SERVING while the process accepts work and turns NOT_SERVING when
//! shutdown begins, so endpoints drain before the pod stops.

use std::net::SocketAddr;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::shutdown::Shutdown;

pub const READINESS: &str = "readiness";

/// A reporter with both services SERVING, and the health service to mount on a server.
pub async fn reporter() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(READINESS, ServingStatus::Serving)
        .await;
    (reporter, service)
}

/// Turn `readiness` NOT_SERVING when shutdown begins.
pub fn drain_on_shutdown(reporter: HealthReporter, shutdown: Shutdown) {
    tokio::spawn(async move {
        shutdown.wait().await;
        reporter
            .set_service_status(READINESS, ServingStatus::NotServing)
            .await;
    });
}

/// A health-only gRPC server (for the Kafka consumers, which serve no other API).
pub async fn serve(addr: SocketAddr, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let (reporter, service) = reporter().await;
    drain_on_shutdown(reporter, shutdown.clone());
    let incoming = crate::grpc::nodelay(listener);
    tokio::spawn(async move {
        let r = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move { shutdown.wait().await })
            .await;
        if let Err(e) = r {
            tracing::error!("health server stopped: {e}");
        }
    });
    Ok(())
}
