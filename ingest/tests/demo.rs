//! `ingest demo` end to end: the embedded broker, the service and the
//! simulated fleet in one process, writing line-protocol files.

use std::collections::BTreeSet;
use std::time::Duration;

use ingest::config::Config;
use ingest::demo::DemoOptions;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local address").port()
}

/// The configuration of a demo writing under `data`, on free ports.
fn demo_config(data: &std::path::Path) -> Config {
    let broker = free_port();
    let http = free_port();
    // The same layers as the command line: overrides as environment variables.
    let env = [
        ("INGEST__BROKER__LISTEN", format!("127.0.0.1:{broker}")),
        ("INGEST__MQTT__PORT", broker.to_string()),
        ("INGEST__HTTP__LISTEN", format!("127.0.0.1:{http}")),
        ("INGEST__SINK__FILE__DIR", data.display().to_string()),
        ("INGEST__WAL__DIR", data.join("wal").display().to_string()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    Config::load_from(None, env).expect("valid configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_writes_points_of_every_domain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cfg = demo_config(&data);
    let options = DemoOptions {
        speed: 600.0,
        duration: Some(Duration::from_secs(4)),
        summary: false,
        ..DemoOptions::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        ingest::demo::run(cfg, options, CancellationToken::new()),
    )
    .await
    .expect("the demo stops by itself")
    .expect("the demo runs cleanly");
    assert!(outcome.readings > 0, "{outcome:?}");
    // A week behind at 600×: 40 simulated minutes in 4 s, far from the wall clock.
    assert_eq!(outcome.real_time_after, None, "{outcome:?}");
    let communes: Vec<&str> = outcome
        .communes
        .iter()
        .map(|c| c.commune.as_str())
        .collect();
    assert_eq!(
        communes,
        ["benguerir", "berkane", "casablanca", "chefchaouen", "rabat"],
        "{outcome:?}"
    );

    let mut measurements = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&data).expect("the sink's folder") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "lp") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).expect("a UTF-8 file");
        for line in influxdb_line_protocol::parse_lines(&text) {
            let line = line.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            measurements.insert(line.series.measurement.to_string());
        }
    }
    assert!(files > 0, "no line-protocol file in {}", data.display());
    for domain in ["lighting", "waste", "traffic"] {
        assert!(
            measurements.contains(domain),
            "no {domain} point in {measurements:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_keeps_to_the_wall_clock_once_it_catches_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = demo_config(&dir.path().join("data"));
    // A minute behind at 600×: the clock catches up after 0.1 s. Running on
    // at 600× it would be 39 minutes ahead after 4 s, and the service would
    // reject every reading more than 5 minutes ahead of it.
    let options = DemoOptions {
        speed: 600.0,
        duration: Some(Duration::from_secs(4)),
        summary: false,
        head_start: Duration::from_secs(60),
        ..DemoOptions::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        ingest::demo::run(cfg, options, CancellationToken::new()),
    )
    .await
    .expect("the demo stops by itself")
    .expect("the demo runs cleanly");
    let switched = outcome.real_time_after.expect("the clock caught up");
    assert!(switched < Duration::from_millis(150), "{switched:?}");
    assert!(outcome.readings > 0, "{outcome:?}");
    let future: u64 = outcome
        .rejections
        .iter()
        .filter(|(reason, _)| *reason == "timestamp_in_future")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(future, 0, "{outcome:?}");
}
