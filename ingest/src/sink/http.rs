//! The InfluxDB write calls, made directly with reqwest: the v2 API
//! (`POST /api/v2/write?org=&bucket=&precision=ns`, `Authorization: Token`),
//! which InfluxDB 2.x and 3.x and VictoriaMetrics accept, and the v1 API
//! (`POST /write?db=&rp=&precision=ns`, basic authentication).
//!
//! The `influxdb2` client crate is not used for writing: its
//! `write_line_protocol` shows neither the response headers (`Retry-After`)
//! nor lets a body be sent gzip-compressed, and it brings a second HTTP and
//! TLS stack (reqwest 0.11).
//!
//! [`super::answer`] says what each answer means.

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::Url;

use super::answer::{classify, Api};
use super::{Failure, Outcome, SinkError};
use crate::config::{SinkConfig, SinkKind};

/// Writes line protocol to one InfluxDB server.
#[derive(Debug)]
pub struct HttpWriter {
    client: reqwest::Client,
    url: Url,
    api: Api,
    auth: Auth,
    gzip: bool,
}

#[derive(Debug)]
enum Auth {
    None,
    Token(String),
    Basic {
        user: String,
        password: Option<String>,
    },
}

impl HttpWriter {
    /// A writer for `cfg.influxdb` with the v2 token (or, for the v1 API,
    /// `username`/`password`, else the token if given).
    pub fn new(cfg: &SinkConfig, token: Option<String>) -> Result<Self, SinkError> {
        // The TLS stack has no built-in provider; another part of the
        // service may have installed it already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let i = &cfg.influxdb;
        let api = match cfg.kind {
            SinkKind::InfluxdbV1 => Api::V1,
            SinkKind::InfluxdbV2 | SinkKind::File => Api::V2,
        };
        let base = i.url.trim_end_matches('/');
        let path = match api {
            Api::V2 => "/api/v2/write",
            Api::V1 => "/write",
        };
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| SinkError::Url {
            url: i.url.clone(),
            reason: e.to_string(),
        })?;
        {
            let mut q = url.query_pairs_mut();
            match api {
                Api::V2 => {
                    q.append_pair("org", &i.org)
                        .append_pair("bucket", &i.bucket);
                }
                Api::V1 => {
                    q.append_pair("db", &i.database);
                    if let Some(rp) = i.retention_policy.as_deref().filter(|rp| !rp.is_empty()) {
                        q.append_pair("rp", rp);
                    }
                }
            }
            q.append_pair("precision", "ns");
        }
        let auth = match (api, &i.username, token) {
            (Api::V1, Some(user), _) => Auth::Basic {
                user: user.clone(),
                password: i.password.clone(),
            },
            (_, _, Some(token)) => Auth::Token(token),
            _ => Auth::None,
        };
        let timeout = Duration::from_millis(i.timeout_ms.max(1));
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("medina-ingest/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &i.ca_file {
            let pem = std::fs::read(path).map_err(|source| SinkError::Io {
                path: path.clone(),
                source,
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(SinkError::Client)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self {
            client: builder.build().map_err(SinkError::Client)?,
            url,
            api,
            auth,
            gzip: cfg.batch.gzip,
        })
    }

    /// The write URL (without credentials).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends one body of whole lines and classifies the answer.
    pub async fn write(&self, body: Bytes) -> Outcome {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        req = match &self.auth {
            Auth::None => req,
            Auth::Token(t) => req.header(AUTHORIZATION, format!("Token {t}")),
            Auth::Basic { user, password } => req.basic_auth(user, password.as_ref()),
        };
        req = if self.gzip {
            match gzip(&body) {
                Ok(z) => req.header(CONTENT_ENCODING, "gzip").body(z),
                Err(e) => {
                    return Outcome::Retry(Failure::new("io", format!("cannot compress: {e}")));
                }
            }
        } else {
            req.body(body)
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let text = if status.is_success() {
                    String::new()
                } else {
                    resp.text().await.unwrap_or_default()
                };
                classify(self.api, status, &headers, &text, Utc::now())
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "failed"
                };
                Outcome::Retry(Failure::new(
                    "connection",
                    format!("request to {} {what}: {}", self.url, error_chain(&e)),
                ))
            }
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_api_parameters() {
        let mut cfg = SinkConfig {
            kind: SinkKind::InfluxdbV2,
            ..SinkConfig::default()
        };
        cfg.influxdb.url = "http://db.example:8086/".into();
        cfg.influxdb.org = "city hall".into();
        let w = HttpWriter::new(&cfg, Some("t".into())).expect("a writer");
        assert_eq!(
            w.url().as_str(),
            "http://db.example:8086/api/v2/write?org=city+hall&bucket=telemetry&precision=ns"
        );
        cfg.kind = SinkKind::InfluxdbV1;
        cfg.influxdb.retention_policy = Some("autogen".into());
        let w = HttpWriter::new(&cfg, None).expect("a writer");
        assert_eq!(
            w.url().as_str(),
            "http://db.example:8086/write?db=telemetry&rp=autogen&precision=ns"
        );
    }

    #[test]
    fn gzip_round_trips() {
        let z = gzip(b"m f=1 1\n").expect("compressed");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&z[..]), &mut out)
            .expect("decoded");
        assert_eq!(out, "m f=1 1\n");
    }
}
