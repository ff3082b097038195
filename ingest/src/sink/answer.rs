//! What the database's answers mean: written, refused (split the lines),
//! or retry, with the `Retry-After` delay and, for answers that point at the
//! configuration, the key likely at fault.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::{Failure, Outcome};

/// Longest error text kept from a response body.
const MAX_ERROR_CHARS: usize = 512;

/// Which write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/api/v2/write`.
    V2,
    /// `/write`.
    V1,
}

/// Classifies an answer of the database.
///
/// - 2xx: written.
/// - 400, 422 (malformed lines) and 413 (body too large): refused; the caller
///   splits the lines. InfluxDB names request-parameter problems with 401,
///   403 and 404, so a 400 is taken to be about the lines themselves.
/// - 429 and 5xx: retried, after `Retry-After` when given.
/// - Anything else (401, 403, 404, redirects, other 4xx): retried at the
///   longest delay, naming the configuration key likely at fault.
pub fn classify(
    api: Api,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
) -> Outcome {
    if status.is_success() {
        return Outcome::Written;
    }
    let code = status.as_u16();
    let error = error_text(headers, body);
    let problem = format!("the database answered {code}: {error}");
    match code {
        400 | 422 | 413 => Outcome::Refused {
            status: code,
            error,
        },
        429 | 500..=599 => {
            let cause = if code == 429 {
                "status_429"
            } else {
                "status_5xx"
            };
            let after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now));
            Outcome::Retry(Failure {
                after,
                ..Failure::new(cause, problem)
            })
        }
        _ => {
            let key = match (code, api) {
                (401 | 403, Api::V2) => "sink.influxdb.token",
                (401 | 403, Api::V1) => "sink.influxdb.username / sink.influxdb.password",
                (404, Api::V2) => "sink.influxdb.org / sink.influxdb.bucket",
                (404, Api::V1) => "sink.influxdb.database",
                _ => "sink.influxdb.url",
            };
            Outcome::Retry(Failure {
                misconfigured: Some(key),
                ..Failure::new("misconfigured", problem)
            })
        }
    }
}

/// Parses `Retry-After`: a number of seconds or an HTTP date. A date in the
/// past gives zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The error text of an answer: the JSON `message` (v2) or `error` (v1),
/// else the `X-Influxdb-Error` header, else the body, shortened.
fn error_text(headers: &HeaderMap, body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["message", "error"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_owned))
        });
    let text = from_json
        .or_else(|| {
            headers
                .get("x-influxdb-error")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.trim().to_owned());
    if text.chars().count() > MAX_ERROR_CHARS {
        let mut short: String = text.chars().take(MAX_ERROR_CHARS).collect();
        short.push('…');
        short
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 23, 15, 0)
            .single()
            .expect("a date")
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 23:15:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 23:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    fn outcome(
        api: Api,
        code: u16,
        headers: &[(&'static str, &'static str)],
        body: &str,
    ) -> Outcome {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        classify(
            api,
            StatusCode::from_u16(code).expect("a status"),
            &map,
            body,
            now(),
        )
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(outcome(Api::V2, 204, &[], ""), Outcome::Written);
        assert_eq!(outcome(Api::V2, 200, &[], ""), Outcome::Written);
        let v2 = r#"{"code":"invalid","message":"unable to parse 'x': missing fields"}"#;
        assert_eq!(
            outcome(Api::V2, 400, &[], v2),
            Outcome::Refused {
                status: 400,
                error: "unable to parse 'x': missing fields".into()
            }
        );
        assert!(matches!(
            outcome(Api::V1, 400, &[], r#"{"error":"field type conflict"}"#),
            Outcome::Refused { status: 400, error } if error == "field type conflict"
        ));
        assert!(matches!(
            outcome(Api::V2, 413, &[], ""),
            Outcome::Refused { status: 413, .. }
        ));
        assert!(matches!(
            outcome(Api::V2, 422, &[], ""),
            Outcome::Refused { status: 422, .. }
        ));
        let Outcome::Retry(f) = outcome(Api::V2, 429, &[("retry-after", "7")], "slow down") else {
            panic!("429 is retried");
        };
        assert_eq!(
            (f.cause, f.after, f.misconfigured),
            ("status_429", Some(Duration::from_secs(7)), None)
        );
        let Outcome::Retry(f) = outcome(Api::V1, 503, &[("x-influxdb-error", "busy")], "") else {
            panic!("503 is retried");
        };
        assert_eq!((f.cause, f.after), ("status_5xx", None));
        assert!(f.problem.contains("503: busy"), "{}", f.problem);
        for (api, code, key) in [
            (Api::V2, 401, "sink.influxdb.token"),
            (Api::V2, 403, "sink.influxdb.token"),
            (Api::V2, 404, "sink.influxdb.org / sink.influxdb.bucket"),
            (Api::V1, 404, "sink.influxdb.database"),
            (
                Api::V1,
                401,
                "sink.influxdb.username / sink.influxdb.password",
            ),
            (Api::V2, 301, "sink.influxdb.url"),
            (Api::V2, 405, "sink.influxdb.url"),
        ] {
            let Outcome::Retry(f) = outcome(api, code, &[], "") else {
                panic!("{code} is retried");
            };
            assert_eq!(
                (f.cause, f.misconfigured),
                ("misconfigured", Some(key)),
                "{code}"
            );
        }
    }

    #[test]
    fn long_error_bodies_are_shortened() {
        let body = "x".repeat(5000);
        let Outcome::Refused { error, .. } = outcome(Api::V2, 400, &[], &body) else {
            panic!("refused");
        };
        assert_eq!(error.chars().count(), MAX_ERROR_CHARS + 1);
    }
}
