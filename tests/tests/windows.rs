//! Event-time windows through the service into InfluxDB 1.x: per-device
//! windows (`{domain}_1m`) and commune rollups (`{domain}_commune_15m`) with
//! figures computed here by hand, and a late reading that corrects its window
//! in place.

mod common;

use std::collections::BTreeMap;

use anyhow::Context as _;

use common::{bounded, close, config, now_s, ns, publish, to_influx1, Service, VISIBLE};
use harness::{wait_until, FieldValue, Influx1, Mosquitto, Point};
use serde_json::json;

fn lighting(commune: &str, device: &str, at: i64, state: &str, power: f64) -> (String, String) {
    (
        format!("city/{commune}/lighting/{device}/telemetry"),
        json!({"dateObserved": at, "powerState": state, "powerConsumption": power, "status": "ok"})
            .to_string(),
    )
}

fn waste(device: &str, at: i64, fill: f64, temperature: f64) -> (String, String) {
    (
        format!("city/fes/waste/{device}/telemetry"),
        json!({"dateObserved": at, "fillingLevel": fill, "temperature": temperature}).to_string(),
    )
}

fn traffic(lane: u32, start: i64, count: f64, speed: f64, congested: bool) -> (String, String) {
    let interval = format!("{}/{}", common::rfc3339(start), common::rfc3339(start + 60));
    (
        "city/fes/traffic/c-1/telemetry".to_owned(),
        json!({"dateObserved": interval, "laneId": lane, "intensity": count,
               "averageVehicleSpeed": speed, "congested": congested})
        .to_string(),
    )
}

/// The one point of `measurement` whose tags include `tags`, at `time_ns`.
fn find<'p>(points: &'p [Point], tags: &[(&str, &str)], time_ns: i64) -> Option<&'p Point> {
    points
        .iter()
        .find(|p| p.time_ns == time_ns && tags.iter().all(|&(k, v)| p.tag(k) == Some(v)))
}

fn float(p: &Point, field: &str) -> f64 {
    match p.field(field) {
        Some(FieldValue::Float(v)) => *v,
        other => panic!("{field} is not a float: {other:?} in {p:?}"),
    }
}

fn integer(p: &Point, field: &str) -> i64 {
    match p.field(field) {
        Some(FieldValue::Integer(v)) => *v,
        other => panic!("{field} is not an integer: {other:?} in {p:?}"),
    }
}

#[tokio::test]
async fn device_windows_and_commune_rollups_with_a_late_correction() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    let Some(db) = Influx1::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        // Event time moves with the readings only, never with the wall clock.
        cfg.windows.idle_advance_s = 0;
        let service = Service::start(cfg).await?;

        // A commune window of 15 minutes that ended half an hour ago at most.
        let base = now_s() / 900 * 900 - 1800;
        let at = ns(base);
        publish(
            &broker,
            vec![
                lighting("fes", "lamp-a", base + 5, "on", 40.0),
                lighting("fes", "lamp-a", base + 25, "on", 50.0),
                lighting("fes", "lamp-a", base + 45, "on", 42.0),
                // On but drawing nothing: a failed lamp.
                lighting("fes", "lamp-b", base + 10, "on", 0.0),
                lighting("fes", "lamp-c", base + 15, "off", 0.0),
                waste("bin-1", base + 5, 0.5, 20.0),
                // Hot enough for the fire alarm (70 °C).
                waste("bin-1", base + 35, 0.9, 75.0),
                waste("bin-2", base + 8, 0.85, 18.0),
                traffic(1, base, 10.0, 50.0, false),
                traffic(2, base, 30.0, 30.0, true),
                // Another commune moves event time past the first minute.
                lighting("meknes", "lamp-z", base + 70, "on", 1.0),
            ],
        )
        .await?;

        // The first minute closes: one point per device (and lane) at its start.
        let lamp_a = [("commune", "fes"), ("device", "lamp-a")];
        let lamps = wait_until("the lighting_1m windows", VISIBLE, async || {
            let points = db.points("lighting_1m").await?;
            anyhow::ensure!(
                find(&points, &lamp_a, at).is_some(),
                "no window of lamp-a yet: {points:?}"
            );
            Ok(points)
        })
        .await?;
        let a = find(&lamps, &lamp_a, at).expect("lamp-a");
        let want: BTreeMap<String, FieldValue> = [
            ("power_state_last", FieldValue::String("on".into())),
            ("power_w_mean", FieldValue::Float(44.0)),
            ("power_w_min", FieldValue::Float(40.0)),
            ("power_w_max", FieldValue::Float(50.0)),
            ("power_w_last", FieldValue::Float(42.0)),
            ("status_last", FieldValue::String("ok".into())),
            ("count", FieldValue::Integer(3)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(a.fields, want, "{a:?}");
        assert_eq!(
            lamps
                .iter()
                .filter(|p| p.tag("commune") == Some("fes"))
                .count(),
            3,
            "one window per lamp: {lamps:?}"
        );

        let bins = wait_until("the waste_1m windows", VISIBLE, async || {
            let points = db.points("waste_1m").await?;
            anyhow::ensure!(points.len() == 2, "{points:?}");
            Ok(points)
        })
        .await?;
        let bin = find(&bins, &[("device", "bin-1")], at).expect("bin-1");
        assert!(close(float(bin, "fill_ratio_mean"), 0.7), "{bin:?}");
        assert_eq!(float(bin, "fill_ratio_min"), 0.5);
        assert_eq!(float(bin, "fill_ratio_max"), 0.9);
        assert_eq!(float(bin, "fill_ratio_last"), 0.9);
        assert!(close(float(bin, "temperature_c_mean"), 47.5), "{bin:?}");
        assert_eq!(float(bin, "temperature_c_max"), 75.0);
        assert_eq!(integer(bin, "count"), 2);

        let lanes = wait_until("the traffic_1m windows", VISIBLE, async || {
            let points = db.points("traffic_1m").await?;
            anyhow::ensure!(points.len() == 2, "{points:?}");
            Ok(points)
        })
        .await?;
        let lane = find(&lanes, &[("device", "c-1"), ("lane", "2")], at).expect("lane 2");
        assert_eq!(float(lane, "vehicle_count_mean"), 30.0);
        assert_eq!(float(lane, "speed_kmh_last"), 30.0);
        assert_eq!(
            float(lane, "flow_vph_mean"),
            1800.0,
            "30 vehicles in a minute"
        );
        assert_eq!(float(lane, "period_s_last"), 60.0);
        assert_eq!(
            lane.field("congested_last"),
            Some(&FieldValue::Boolean(true))
        );
        assert_eq!(integer(lane, "count"), 1);
        // No rollup yet: its quarter of an hour has not ended in event time.
        assert!(db.points("lighting_commune_15m").await?.is_empty());

        // A late reading (within the allowed lateness) corrects lamp-a's
        // window: rewritten at the same timestamp, so still one point.
        let corrections = service
            .metrics()
            .await?
            .get("ingest_window_corrections_total");
        publish(
            &broker,
            vec![lighting("fes", "lamp-a", base + 50, "on", 60.0)],
        )
        .await?;
        let lamps = wait_until("the corrected window of lamp-a", VISIBLE, async || {
            let points = db.points("lighting_1m").await?;
            let a = find(&points, &lamp_a, at).context("no window of lamp-a")?;
            anyhow::ensure!(integer(a, "count") == 4, "{a:?}");
            Ok(points)
        })
        .await?;
        let of_a: Vec<&Point> = lamps
            .iter()
            .filter(|p| p.tag("device") == Some("lamp-a"))
            .collect();
        assert_eq!(of_a.len(), 1, "corrected in place: {of_a:?}");
        let a = of_a[0];
        assert_eq!(a.time_ns, at);
        assert_eq!(float(a, "power_w_mean"), 48.0);
        assert_eq!(float(a, "power_w_min"), 40.0);
        assert_eq!(float(a, "power_w_max"), 60.0);
        assert_eq!(float(a, "power_w_last"), 60.0);
        let metrics = service.metrics().await?;
        assert!(
            metrics.get("ingest_window_corrections_total") > corrections,
            "the correction is counted"
        );

        // Event time passes the end of the quarter: the rollups are written.
        publish(
            &broker,
            vec![lighting("meknes", "lamp-z", base + 960, "on", 1.0)],
        )
        .await?;
        let rollup = |measurement: &'static str| {
            let db = &db;
            async move {
                wait_until(measurement, VISIBLE, async || {
                    let points = db.points(measurement).await?;
                    let fes: Vec<Point> = points
                        .into_iter()
                        .filter(|p| p.tag("commune") == Some("fes"))
                        .collect();
                    anyhow::ensure!(!fes.is_empty(), "no rollup of fes yet");
                    Ok(fes)
                })
                .await
            }
        };

        let lit = rollup("lighting_commune_15m").await?;
        assert_eq!(lit.len(), 1, "{lit:?}");
        let l = &lit[0];
        assert_eq!(l.time_ns, at);
        assert_eq!(l.tags.len(), 1, "only the commune tag: {l:?}");
        assert_eq!(integer(l, "lamps_reporting"), 3);
        assert_eq!(integer(l, "lamps_on"), 2);
        assert_eq!(integer(l, "lamps_off"), 1);
        assert_eq!(integer(l, "lamps_failed"), 1);
        // lamp-a's mean (corrected: 48 W), and 0 W for the others.
        assert_eq!(float(l, "load_w"), 48.0);

        let bins = rollup("waste_commune_15m").await?;
        assert_eq!(bins.len(), 1, "{bins:?}");
        let b = &bins[0];
        assert_eq!(b.time_ns, at);
        assert_eq!(integer(b, "bins_reporting"), 2);
        assert_eq!(
            integer(b, "bins_full"),
            2,
            "0.9 and 0.85 are at or above 0.8"
        );
        assert_eq!(integer(b, "bins_alarm"), 1, "75 °C");
        assert!(close(float(b, "fill_mean"), 0.875), "{b:?}");

        let roads = rollup("traffic_commune_15m").await?;
        assert_eq!(roads.len(), 1, "{roads:?}");
        let r = &roads[0];
        assert_eq!(r.time_ns, at);
        assert_eq!(integer(r, "lanes_reporting"), 2);
        assert_eq!(integer(r, "lanes_congested"), 1);
        assert_eq!(float(r, "vehicles"), 40.0);
        // Flow-weighted: (50 × 10 + 30 × 30) / 40.
        assert_eq!(float(r, "speed_mean_kmh"), 35.0);

        service.stop().await
    })
    .await
}
