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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_writes_points_of_every_domain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let broker = free_port();
    let http = free_port();
    // The same layers as the command line: overrides as environment variables.
    let env = [
        ("INGEST__BROKER__LISTEN", format!("127.0.0.1:{broker}")),
        ("INGEST__MQTT__PORT", broker.to_string()),
        ("INGEST__HTTP__LISTEN", format!("127.0.0.1:{http}")),
        ("INGEST__SINK__FILE__DIR", data.display().to_string()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let cfg = Config::load_from(None, env).expect("valid configuration");
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
