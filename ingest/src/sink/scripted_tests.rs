//! The whole sink stage against a scripted HTTP server, for answers a real
//! database does not give on demand: 429 with `Retry-After`, 503, 401, 413.

use std::sync::Arc;
use std::time::Duration;

use super::live_tests::{batch, sink_cfg, spawn, Logs, T0};
use super::testserver::{scripted, Answer};
use super::*;

fn script(
    f: impl Fn(usize, &str) -> (u16, Vec<(&'static str, String)>) + Send + Sync + 'static,
) -> Arc<Answer> {
    Arc::new(f)
}

#[tokio::test]
async fn retry_after_and_503_are_retried_with_the_same_lines() {
    let (addr, seen) = scripted(script(|i, _| match i {
        0 => (429, vec![("retry-after", "1".to_owned())]),
        1 => (503, vec![]),
        _ => (204, vec![]),
    }))
    .await;
    let mut cfg = sink_cfg(SinkKind::InfluxdbV2, format!("http://{addr}"));
    cfg.retry.max_ms = 5000;
    let s = spawn(cfg, Some("s3cret".into()));
    s.tx.send(batch(&[format!("m f=1 {T0}"), format!("m f=2 {T0}")]))
        .await
        .expect("sent");
    let (_, metrics) = s.finish().await;
    let seen = seen.lock().expect("requests").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for r in &seen {
        assert!(
            r.line
                .starts_with("POST /api/v2/write?org=city&bucket=telemetry&precision=ns "),
            "{}",
            r.line
        );
        assert_eq!(r.header("authorization"), Some("Token s3cret"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.body, format!("m f=1 {T0}\nm f=2 {T0}\n"));
    }
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(metrics.retry("status_429").get(), 1);
    assert_eq!(metrics.retry("status_5xx").get(), 1);
    assert_eq!(metrics.written(PointKind::raw).get(), 2);
}

#[tokio::test]
async fn a_bad_token_is_retried_and_names_the_key() {
    let logs = Logs::capture();
    let (addr, seen) = scripted(script(
        |i, _| if i < 2 { (401, vec![]) } else { (204, vec![]) },
    ))
    .await;
    let s = spawn(
        sink_cfg(SinkKind::InfluxdbV2, format!("http://{addr}")),
        Some("wrong".into()),
    );
    s.tx.send(batch(&[format!("m f=1 {T0}")]))
        .await
        .expect("sent");
    let (dead, metrics) = s.finish().await;
    assert!(dead.is_empty());
    let seen = seen.lock().expect("requests").clone();
    assert_eq!(seen.len(), 3);
    assert!(
        seen[2].at - seen[1].at >= Duration::from_millis(300),
        "the longest delay"
    );
    assert_eq!(metrics.retry("misconfigured").get(), 2);
    assert_eq!(
        logs.count("check sink.influxdb.token"),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn too_large_is_split_in_halves() {
    let (addr, seen) = scripted(script(|_, body| {
        if body.lines().count() > 2 {
            (413, vec![])
        } else {
            (204, vec![])
        }
    }))
    .await;
    let s = spawn(
        sink_cfg(SinkKind::InfluxdbV1, format!("http://{addr}")),
        None,
    );
    let lines: Vec<String> = (0..8).map(|i| format!("m f={i} {T0}")).collect();
    s.tx.send(batch(&lines)).await.expect("sent");
    let (dead, metrics) = s.finish().await;
    assert!(dead.is_empty());
    assert_eq!(metrics.written(PointKind::raw).get(), 8);
    let seen = seen.lock().expect("requests").clone();
    let written: String = seen
        .iter()
        .filter(|r| r.body.lines().count() <= 2)
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        written,
        lines.iter().map(|l| l.clone() + "\n").collect::<String>()
    );
    assert!(
        seen[0]
            .line
            .starts_with("POST /write?db=telemetry&precision=ns "),
        "{}",
        seen[0].line
    );
}
