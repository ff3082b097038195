//! `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::health::Health;

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Health,
}

/// The router, for tests and for [`serve`].
pub fn router(registry: Arc<Registry>, health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AppState { registry, health })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let r = state.health.readiness();
    if r.ready {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}\n", r.problems.join("\n")),
        )
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&state.registry),
    )
}

/// Binds `addr` (naming it when it is taken) and serves until `shutdown`.
/// Returns the bound address (useful with port 0) and the server task.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("http.listen: cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = router(registry, health);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get_text(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        let status = text[9..12].parse().expect("status");
        (status, text)
    }

    #[tokio::test]
    async fn endpoints_answer() {
        let mut registry = Registry::default();
        let m = crate::metrics::Metrics::new(&mut registry);
        m.messages_received.inc();
        let health = Health::default();
        let token = CancellationToken::new();
        let (addr, task) = serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::new(registry),
            health.clone(),
            token.clone(),
        )
        .await
        .expect("serve");
        assert_eq!(get_text(addr, "/healthz").await.0, 200);
        let (status, body) = get_text(addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("broker not connected"), "{body}");
        health.set_broker(true, None);
        health.set_sink(true, None);
        assert_eq!(get_text(addr, "/readyz").await.0, 200);
        let (status, body) = get_text(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("ingest_messages_received_total 1"), "{body}");
        token.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("stops")
            .expect("joins");
    }

    #[tokio::test]
    async fn a_taken_port_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = serve(
            addr,
            Arc::new(Registry::default()),
            Health::default(),
            CancellationToken::new(),
        )
        .await
        .expect_err("taken");
        assert!(
            format!("{e:#}").contains(&format!("http.listen: cannot listen on {addr}")),
            "{e:#}"
        );
    }
}
