//! Every wire format (native, SenML, The Things Stack v3, ChirpStack v4) and
//! every domain, through the service into a real database: the exact
//! measurement, tags, fields, field types and timestamps of the contract.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::messages::{every_format, Expected};
use common::{bounded, config, now_s, publish, to_influx1, to_victoria, Service, VISIBLE};
use harness::{require, wait_until, FieldType, FieldValue, Influx1, Mosquitto, VictoriaMetrics};

/// A VictoriaMetrics series: its name and labels.
type Key = (String, BTreeMap<String, String>);

/// Event times of the fixtures: ten minutes ago, well within the limits.
fn start_time() -> i64 {
    now_s() - 600
}

#[tokio::test]
async fn every_format_lands_in_influxdb_1_with_exact_types() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    let Some(db) = Influx1::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        // Raw points only: windows are the subject of their own tests.
        cfg.windows.enabled = false;
        let service = Service::start(cfg).await?;

        let (messages, expected) = every_format(start_time());
        publish(&broker, messages).await?;

        let by_measurement = group(&expected);
        for (measurement, want) in &by_measurement {
            let points = wait_until(measurement, VISIBLE, async || {
                let points = db.points(measurement).await?;
                anyhow::ensure!(
                    points.len() >= want.len(),
                    "{} of {} points: {points:?}",
                    points.len(),
                    want.len()
                );
                Ok(points)
            })
            .await?;
            let got: Vec<Expected> = points
                .into_iter()
                .map(|p| Expected {
                    measurement: want[0].measurement,
                    tags: p.tags,
                    fields: p.fields,
                    time_ns: p.time_ns,
                })
                .collect();
            let mut want = want.clone();
            want.sort_by(|a, b| (a.time_ns, &a.tags).cmp(&(b.time_ns, &b.tags)));
            assert_eq!(got, want, "{measurement}");
        }
        assert_eq!(
            db.measurements().await?,
            ["lighting", "traffic", "waste"],
            "nothing else is written"
        );

        // The types the database keeps: floats stay floats (a vehicle count
        // too), states are strings, `congested` is a boolean.
        let float = |names: &[&str]| -> Vec<(String, FieldType)> {
            names
                .iter()
                .map(|n| ((*n).to_owned(), FieldType::Float))
                .collect()
        };
        let mut lighting: BTreeMap<String, FieldType> = float(&[
            "illuminance_level",
            "power_w",
            "voltage_v",
            "current_a",
            "energy_kwh",
            "rssi_dbm",
            "snr_db",
        ])
        .into_iter()
        .collect();
        lighting.insert("power_state".into(), FieldType::String);
        lighting.insert("status".into(), FieldType::String);
        assert_eq!(db.field_types("lighting").await?, lighting);

        let mut waste: BTreeMap<String, FieldType> = float(&[
            "fill_ratio",
            "temperature_c",
            "battery_ratio",
            "rssi_dbm",
            "snr_db",
        ])
        .into_iter()
        .collect();
        waste.insert("status".into(), FieldType::String);
        assert_eq!(db.field_types("waste").await?, waste);

        let mut traffic: BTreeMap<String, FieldType> = float(&[
            "vehicle_count",
            "occupancy_ratio",
            "speed_kmh",
            "vehicle_length_m",
            "period_s",
            "flow_vph",
            "rssi_dbm",
            "snr_db",
        ])
        .into_iter()
        .collect();
        traffic.insert("congested".into(), FieldType::Boolean);
        assert_eq!(db.field_types("traffic").await?, traffic);

        let metrics = service.metrics().await?;
        for (format, count) in [
            ("native", 3.0),
            ("senml", 1.0),
            ("the_things_stack", 2.0),
            ("chirpstack", 1.0),
        ] {
            assert_eq!(
                metrics.get(&format!(
                    "ingest_messages_decoded_total{{format=\"{format}\"}}"
                )),
                count,
                "{format}: {:?}",
                metrics.family("ingest_messages_decoded_total")
            );
        }
        service.stop().await
    })
    .await
}

#[tokio::test]
async fn every_format_lands_in_victoria_metrics_through_the_v2_api() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    if require(&harness::VICTORIA_METRICS).is_none() {
        return Ok(());
    }
    // Deduplication on: a sample written twice at one timestamp stays one.
    let vm = VictoriaMetrics::launch_with(&["-dedup.minScrapeInterval=1ms"]).await?;
    bounded(async {
        let mut cfg = config(&broker)?;
        to_victoria(&mut cfg, &vm);
        cfg.windows.enabled = false;
        let service = Service::start(cfg).await?;

        let (messages, expected) = every_format(start_time());
        publish(&broker, messages).await?;

        // Numeric and boolean fields become `{measurement}_{field}` series with
        // the tags as labels and millisecond timestamps; string fields carry no
        // number and are not checked.
        let mut want: BTreeMap<Key, Vec<(i64, f64)>> = BTreeMap::new();
        let mut strings = BTreeSet::new();
        for point in &expected {
            for (field, value) in &point.fields {
                let name = format!("{}_{field}", point.measurement);
                let number = match value {
                    FieldValue::Float(v) => *v,
                    FieldValue::Boolean(b) => f64::from(u8::from(*b)),
                    FieldValue::String(_) => {
                        strings.insert(name);
                        continue;
                    }
                    other => panic!("no raw field is {other:?}"),
                };
                want.entry((name, point.tags.clone()))
                    .or_default()
                    .push((point.time_ns / 1_000_000, number));
            }
        }
        for samples in want.values_mut() {
            samples.sort_by_key(|&(t, _)| t);
        }

        let got = wait_until("every series in VictoriaMetrics", VISIBLE, async || {
            let series = vm.export().await?;
            let got: BTreeMap<Key, Vec<(i64, f64)>> = series
                .into_iter()
                .filter(|s| !strings.contains(&s.name))
                .map(|s| {
                    let samples = s.timestamps.into_iter().zip(s.values).collect();
                    ((s.name, s.labels), samples)
                })
                .collect();
            let samples: usize = got.values().map(Vec::len).sum();
            let wanted: usize = want.values().map(Vec::len).sum();
            anyhow::ensure!(
                got.len() >= want.len() && samples >= wanted,
                "{} of {} series, {samples} of {wanted} samples",
                got.len(),
                want.len()
            );
            Ok(got)
        })
        .await?;
        assert_eq!(got, want);
        service.stop().await
    })
    .await
}

fn group(points: &[Expected]) -> BTreeMap<&'static str, Vec<Expected>> {
    let mut by: BTreeMap<&'static str, Vec<Expected>> = BTreeMap::new();
    for p in points {
        by.entry(p.measurement).or_default().push(p.clone());
    }
    by
}
