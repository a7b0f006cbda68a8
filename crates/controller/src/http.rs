//! The small HTTP servers: `/metrics` on `--metrics-addr`, `/healthz` and `/readyz` on
//! `--health-addr` (one server when both addresses are the same). `/healthz` answers while
//! the process runs; `/readyz` once the API server has answered, on every replica (a
//! follower is ready: it waits for the Lease).

use crate::error::ControllerError;
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the servers report.
#[derive(Debug, Default)]
pub struct Probes {
    /// The API server answered.
    pub ready: AtomicBool,
    /// The metrics.
    pub metrics: Metrics,
}

/// Which paths one server answers.
#[derive(Debug, Clone, Copy)]
struct Paths {
    metrics: bool,
    health: bool,
}

/// Binds `addr` and serves until `cancel` fires; returns the bound address (port 0 picks
/// a free one).
pub async fn serve(
    addr: SocketAddr,
    what: &'static str,
    metrics: bool,
    health: bool,
    probes: Arc<Probes>,
    cancel: CancellationToken,
) -> Result<SocketAddr, ControllerError> {
    let listener =
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ControllerError::Listen {
                addr: addr.to_string(),
                what,
                message: e.to_string(),
            })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let paths = Paths { metrics, health };
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let probes = Arc::clone(&probes);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let probes = Arc::clone(&probes);
                    async move { Ok::<_, std::convert::Infallible>(answer(&request, paths, &probes)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "probe connection ended");
                }
            });
        }
    });
    Ok(bound)
}

fn answer(request: &Request<Incoming>, paths: Paths, probes: &Probes) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert("content-type", value);
        }
        response
    };
    match request.uri().path() {
        "/metrics" if paths.metrics => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            probes.metrics.render(),
        ),
        "/healthz" if paths.health => text(StatusCode::OK, "text/plain", "ok".into()),
        "/readyz" if paths.health => {
            if probes.ready.load(Ordering::Relaxed) {
                text(StatusCode::OK, "text/plain", "ok".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "the Kubernetes API has not answered yet".into(),
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found".into()),
    }
}
