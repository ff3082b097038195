//! `simulate verify`, the command, against a real VictoriaMetrics without
//! deduplication: points written straight to the database stand for what
//! the service wrote, so that every verdict (found, missing, stored twice,
//! unaccounted for, ignored) is checked against a known answer.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use harness::VictoriaMetrics;
use schemas::Domain;
use simulators::verify::Sent;
use simulators::MessageFault;

/// The bound on one run of the command.
const RUN: Duration = Duration::from_secs(60);

fn t0() -> DateTime<Utc> {
    "2026-03-04T12:00:00Z".parse().expect("RFC 3339")
}

fn message<'a>(
    seq: u64,
    domain: Domain,
    commune: &'a str,
    device: &'a str,
    lane: Option<u32>,
    after_s: i64,
) -> Sent<'a> {
    Sent {
        seq,
        domain,
        commune,
        device,
        lane,
        event_time: t0() + TimeDelta::seconds(after_s),
        topic: "city/x/y/z/telemetry",
        published_at: t0() + TimeDelta::seconds(after_s + 1),
        acked: Some(true),
        fault: None,
        valid: true,
    }
}

fn write_manifest(path: &Path, messages: &[Sent<'_>]) {
    let text: String = messages.iter().map(|m| m.to_json() + "\n").collect();
    std::fs::write(path, text).expect("manifest written");
}

/// Line protocol at `t0 + after_s`.
fn line(series_and_fields: &str, after_s: i64) -> String {
    let ns = (t0() + TimeDelta::seconds(after_s))
        .timestamp_nanos_opt()
        .expect("in range");
    format!("{series_and_fields} {ns}\n")
}

async fn simulate_verify(vm: &VictoriaMetrics, manifest: &Path, report: &Path) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simulate"));
    command
        .arg("verify")
        .arg("--manifest")
        .arg(manifest)
        .args(["--db", "victoria-metrics", "--url", vm.base_url()])
        .args(["--force-flush", "--timeout", "3s", "--interval", "200ms"])
        .arg("--report")
        .arg(report);
    tokio::time::timeout(RUN, tokio::task::spawn_blocking(move || command.output()))
        .await
        .expect("simulate verify ends")
        .expect("the task runs")
        .expect("simulate verify starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_tells_found_missing_twice_and_unaccounted_points_apart() {
    let Some(vm) = VictoriaMetrics::start_or_skip().await else {
        return;
    };
    let mut rejected = message(3, Domain::Lighting, "rabat", "lamp-1", None, 180);
    rejected.valid = false;
    rejected.fault = Some(MessageFault::Malformed);
    let messages = [
        message(0, Domain::Lighting, "rabat", "lamp-1", None, 0),
        message(1, Domain::Traffic, "rabat", "counter-1", Some(2), 60),
        message(2, Domain::Waste, "berkane", "bin-1", None, 120),
        rejected,
        message(4, Domain::Lighting, "rabat", "lamp-1", None, 240),
    ];
    // What the service would have written, and more.
    let writes = [
        // Seq 0, two fields; seq 4 at the end of the range.
        line(
            "lighting,commune=rabat,device=lamp-1 power_w=41.5,power_state=\"on\"",
            0,
        ),
        line("lighting,commune=rabat,device=lamp-1 power_w=40", 240),
        // Seq 1, as a traffic point with its derived fields.
        line(
            "traffic,commune=rabat,device=counter-1,lane=2 vehicle_count=12,period_s=300,flow_vph=144",
            60,
        ),
        // Not accounted for: between two messages of lamp-1.
        line("lighting,commune=rabat,device=lamp-1 power_w=1", 30),
        // Ignored: another series, a window, a time past the range.
        line("lighting,commune=rabat,device=lamp-2 power_w=1", 0),
        line(
            "lighting_1m,commune=rabat,device=lamp-1 power_w_mean=41.5,count=1i",
            0,
        ),
        line("lighting,commune=rabat,device=lamp-1 power_w=1", 300),
    ]
    .concat();
    vm.write_lines(&writes).await.expect("written");
    // Seq 1 again: without deduplication VictoriaMetrics keeps both.
    vm.write_lines(&line(
        "traffic,commune=rabat,device=counter-1,lane=2 vehicle_count=12,period_s=300,flow_vph=144",
        60,
    ))
    .await
    .expect("written again");

    let dir = tempfile::tempdir().expect("temporary folder");
    let (manifest, report_path) = (dir.path().join("m.jsonl"), dir.path().join("r.json"));
    write_manifest(&manifest, &messages);
    let out = simulate_verify(&vm, &manifest, &report_path).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FAILED: 1 missing, 2 duplicated"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    seq 2: waste berkane/bin-1 at 2026-03-04T12:02:00.000Z\n"),
        "{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report written"))
            .expect("JSON");
    let number = |key: &str| report[key].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        [
            "lines",
            "series",
            "expected",
            "invalid",
            "found",
            "missing",
            "stored_more_than_once",
            "unaccounted",
            "duplicated"
        ]
        .map(number),
        [5, 3, 4, 1, 3, 1, 1, 1, 2],
        "{report:#}"
    );
    assert_eq!(report["missing_points"][0]["seqs"], serde_json::json!([2]));
    let odd = &report["duplicated_points"];
    assert_eq!(odd[0]["event_time"], "2026-03-04T12:00:30.000Z", "{odd:#}");
    assert_eq!(odd[0]["seqs"], serde_json::json!([]));
    assert_eq!(odd[1]["device"], "counter-1", "{odd:#}");
    assert_eq!(odd[1]["note"], "stored 2 times", "{odd:#}");
    assert_eq!(report["timed_out"], true);
    assert_eq!(report["latency"]["points"], 3);

    // A manifest of seq 0 alone: found at the first poll, exit 0, at once.
    write_manifest(&manifest, &messages[..1]);
    let out = simulate_verify(&vm, &manifest, &report_path).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("PASSED: every expected point stored once"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report written"))
            .expect("JSON");
    assert_eq!(
        (report["polls"].as_u64(), report["timed_out"].as_bool()),
        (Some(1), Some(false))
    );
}
