//! The HTTP client the harness uses to talk to the databases.

use std::time::Duration;

use anyhow::Context as _;

/// A client for servers on 127.0.0.1: no proxy, a bound on every request, and no
/// connection pool (a pooled connection would outlive a server restart).
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built with rustls but without a crypto provider; the process
    // needs one installed before the first client is built. Installing fails
    // only when one is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")
}

/// Sends `request` and fails with the status and body unless the status is 2xx.
pub(crate) async fn send_ok(
    request: reqwest::RequestBuilder,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let response = request
        .send()
        .await
        .with_context(|| format!("{what}: no answer"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    anyhow::bail!("{what}: {status}: {}", body.trim())
}
