//! The command line of `simulate`: subcommands, their options, and the
//! conversion into the configurations of [`replay`](super::replay()),
//! [`load`](super::load()) and [`verify`](crate::verify::verify()).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rumqttc::QoS;

use super::connection::Broker;
use super::load::{Bound, LoadConfig};
use super::replay::ReplayConfig;
use crate::spec::{FaultRates, FleetSpec};
use crate::verify::{Database, Secret, VerifyConfig};

/// Publishes a simulated fleet of street lights, waste containers and traffic
/// counters to an MQTT broker, in every wire format the service reads, and
/// checks what reached the database.
///
/// A zero-loss check is a load test with a manifest, then its verification:
///
/// `simulate load --broker 127.0.0.1:1883 --rate 0 --count 100000 --manifest m.jsonl`
///
/// `simulate verify --manifest m.jsonl --db victoria-metrics --url http://127.0.0.1:8428`
#[derive(Debug, Parser)]
#[command(name = "simulate", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publishes the fleet live: in real time (`--speed 1`, each message when
    /// its time comes on the wall clock) or accelerated (`--speed 1440`: a
    /// simulated day per minute, device timestamps following the simulated
    /// clock from `--from`). Runs until Ctrl-C (or SIGTERM) or until
    /// `--duration` of simulated time has passed.
    Run(RunArgs),
    /// Publishes a past period as fast as the broker takes it; event times
    /// are those of the period. The service rejects readings older than 30
    /// days by default.
    Backfill(BackfillArgs),
    /// Measures the broker's intake: a target rate spread over several
    /// connections, from messages of the fleet rendered before the timed
    /// part, with a progress line every second and a final report. Stops by
    /// itself after `--count` messages or `--duration`. `--manifest` lists
    /// every message for `simulate verify`.
    Load(LoadArgs),
    /// Checks a load test against the database, the loss oracle: reads the
    /// manifest of `simulate load --manifest`, polls the raw points
    /// (`lighting`, `waste`, `traffic`) of its communes and time range
    /// until every expected point is found or `--timeout` passes, and
    /// reports the points missing, those duplicated (stored more than once,
    /// or not accounted for by any message) and the publish-to-queryable
    /// latency. A message is identified by its point: measurement, commune,
    /// device, lane and event time. Exits 1 when anything is missing or
    /// duplicated.
    Verify(VerifyArgs),
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct Common {
    /// The broker, as HOST:PORT (plain TCP).
    #[arg(long, value_parser = parse_broker)]
    pub broker: Broker,
    /// QoS of the publications: 0 (at most once) or 1 (at least once,
    /// counted when the broker acknowledges).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// MQTT connections to publish over, each with its own client id.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// `off` publishes every message once, on time and valid, and turns
    /// off the devices' failures (`FaultRates::NONE`); `on` keeps the
    /// fleet file's rates.
    #[arg(long, value_enum, default_value_t = Faults::On)]
    pub faults: Faults,
}

/// Whether the fleet's faults are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Faults {
    /// The rates of the fleet file.
    On,
    /// No fault at all.
    Off,
}

/// `simulate run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// The fleet spec (TOML), e.g. deploy/simulate/fleet.toml.
    #[arg(long)]
    fleet: PathBuf,
    /// Simulated seconds per wall-clock second: 1 is real time, 1440 a day
    /// per minute.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    speed: f64,
    /// Where the simulated clock starts (RFC 3339); now by default.
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// How much simulated time to publish (`90s`, `10m`, `6h`, `2d`);
    /// without it the run lasts until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// With `--from` in the past and a `--speed` above 1: switch to real
    /// time once the simulated clock reaches the wall clock, instead of
    /// running into the future (readings more than 5 minutes ahead are
    /// rejected by the service).
    #[arg(long)]
    catch_up: bool,
}

/// `simulate backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    common: Common,
    /// The fleet spec (TOML).
    #[arg(long)]
    fleet: PathBuf,
    /// Start of the period (RFC 3339), included.
    #[arg(long)]
    from: DateTime<Utc>,
    /// End of the period (RFC 3339), excluded; now by default.
    #[arg(long)]
    to: Option<DateTime<Utc>>,
}

/// `simulate load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    common: Common,
    /// The fleet spec (TOML); the built-in five communes by default.
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// Target messages per second over all connections; 0 is as fast as
    /// possible.
    #[arg(long)]
    rate: f64,
    /// Stop after this many messages.
    #[arg(
        long,
        conflicts_with = "duration",
        required_unless_present = "duration"
    )]
    count: Option<u64>,
    /// Stop after this long (`30s`, `5m`).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Distinct messages rendered before the timed part (by default as many
    /// as will be sent, up to 1,000,000); they are cycled through when
    /// fewer, and a repeated message has the identity of its first copy.
    #[arg(long)]
    pool: Option<usize>,
    /// Writes the final report as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Writes one JSON line per message handed to the broker: `seq`, its
    /// identity (domain, commune, device, lane, event time), topic, publish
    /// time, at QoS 1 whether it was acknowledged, its fault and whether the
    /// service must accept it; the input of `simulate verify`.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Records N messages of the pool in the manifest as published and
    /// acknowledged but never publishes them (nor their repeats, when the
    /// pool is cycled): `simulate verify` must then report exactly those N
    /// points missing, a self-check of the oracle. They are valid messages,
    /// each the only one of the pool with its identity, chosen with
    /// `--drop-seed`; the report lists their `seq` under `dropped`.
    #[arg(long, default_value_t = 0)]
    drop: u64,
    /// The seed that chooses the messages of `--drop`.
    #[arg(long, default_value_t = 1)]
    drop_seed: u64,
    /// Tokio worker threads; 0 runs everything on the main thread.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}

/// The database `simulate verify` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DbKind {
    /// VictoriaMetrics (`/api/v1/export`).
    VictoriaMetrics,
    /// InfluxDB 2.x and Cloud through the v2 API (Flux on `/api/v2/query`).
    InfluxdbV2,
    /// InfluxDB 1.x through the v1 API (InfluxQL on `/query`).
    InfluxdbV1,
}

/// `simulate verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The manifest that `simulate load --manifest` wrote.
    #[arg(long)]
    manifest: PathBuf,
    /// The database the service writes to.
    #[arg(long, value_enum)]
    db: DbKind,
    /// Its base URL, e.g. http://127.0.0.1:8428 or http://127.0.0.1:8086.
    #[arg(long)]
    url: String,
    /// influxdb-v2: the organization.
    #[arg(long, required_if_eq("db", "influxdb-v2"))]
    org: Option<String>,
    /// influxdb-v2: the bucket.
    #[arg(long, required_if_eq("db", "influxdb-v2"))]
    bucket: Option<String>,
    /// influxdb-v2: the API token.
    #[arg(long, env = "INFLUX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// influxdb-v1: the database.
    #[arg(long, required_if_eq("db", "influxdb-v1"))]
    database: Option<String>,
    /// influxdb-v1: the retention policy; the database's default otherwise.
    #[arg(long)]
    retention_policy: Option<String>,
    /// influxdb-v1: the user name (basic authentication).
    #[arg(long, env = "INFLUX_USERNAME", hide_env_values = true)]
    username: Option<String>,
    /// influxdb-v1: the password.
    #[arg(long, env = "INFLUX_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// victoria-metrics: asks it to make recent writes searchable before each
    /// poll (`/internal/force_flush`). Latencies then leave out its own
    /// indexing delay: several seconds for a new series by default.
    #[arg(long)]
    force_flush: bool,
    /// How long to wait for missing points, from the first poll. A point is
    /// declared missing only then: cover the time the service may take to
    /// write what it was sent.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// The pause between polls: the resolution of the latency figures.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    interval: Duration,
    /// How long to keep polling once every expected point is found, to see
    /// duplicates written late.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    settle: Duration,
    /// How many missing and duplicated points to list.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// Writes the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl VerifyArgs {
    /// The manifest file.
    pub fn manifest(&self) -> &std::path::Path {
        &self.manifest
    }

    /// The verification this command line asks for.
    pub fn config(&self) -> anyhow::Result<VerifyConfig> {
        let given = |name: &str, present: bool, kinds: &str| {
            anyhow::ensure!(!present, "--{name} applies to --db {kinds} only");
            Ok(())
        };
        // The credentials may come from the environment, set for other
        // tools: they are only ignored where they do not apply.
        let v1 = self.database.is_some() || self.retention_policy.is_some();
        let v2 = self.org.is_some() || self.bucket.is_some();
        let database = match self.db {
            DbKind::VictoriaMetrics => {
                given("org and --bucket", v2, "influxdb-v2")?;
                given("database and --retention-policy", v1, "influxdb-v1")?;
                Database::VictoriaMetrics {
                    url: self.url.clone(),
                    force_flush: self.force_flush,
                }
            }
            DbKind::InfluxdbV2 => {
                given("database and --retention-policy", v1, "influxdb-v1")?;
                given("force-flush", self.force_flush, "victoria-metrics")?;
                Database::InfluxV2 {
                    url: self.url.clone(),
                    org: self.org.clone().context("--org is required")?,
                    bucket: self.bucket.clone().context("--bucket is required")?,
                    token: self.token.clone().map(Secret),
                }
            }
            DbKind::InfluxdbV1 => {
                given("org and --bucket", v2, "influxdb-v2")?;
                given("force-flush", self.force_flush, "victoria-metrics")?;
                Database::InfluxV1 {
                    url: self.url.clone(),
                    database: self.database.clone().context("--database is required")?,
                    retention_policy: self.retention_policy.clone(),
                    username: self.username.clone(),
                    password: self.password.clone().map(Secret),
                }
            }
        };
        anyhow::ensure!(!self.interval.is_zero(), "--interval must be longer than 0");
        Ok(VerifyConfig {
            database,
            timeout: self.timeout,
            interval: self.interval,
            settle: self.settle,
            examples: self.show,
        })
    }
}

fn parse_broker(s: &str) -> Result<Broker, String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("{s:?} is not HOST:PORT"));
    }
    Ok(Broker {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
    })
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// A duration such as `500ms`, `30s`, `10m`, `6h` or `2d` (a bare number is
/// seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is one of ms, s, m, h, d")),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn qos(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// Reads and validates a fleet spec, applying `--faults`.
fn read_fleet(path: Option<&PathBuf>, faults: Faults) -> anyhow::Result<FleetSpec> {
    let mut spec = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the fleet spec {}", path.display()))?;
            FleetSpec::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => FleetSpec::default(),
    };
    if faults == Faults::Off {
        spec.faults = FaultRates::NONE;
    }
    Ok(spec)
}

impl RunArgs {
    /// The replay this command line asks for, its clock starting at `now`
    /// unless `--from` says otherwise.
    pub fn config(&self, now: DateTime<Utc>) -> anyhow::Result<ReplayConfig> {
        let from = self.from.unwrap_or(now);
        let to = match self.duration {
            Some(d) => Some(from + TimeDelta::from_std(d).context("--duration is too long")?),
            None => None,
        };
        Ok(ReplayConfig {
            broker: self.common.broker.clone(),
            spec: read_fleet(Some(&self.fleet), self.common.faults)?,
            from,
            to,
            speed: Some(self.speed),
            catch_up: self.catch_up,
            qos: qos(self.common.qos),
            connections: self.common.connections,
        })
    }
}

impl BackfillArgs {
    /// The replay this command line asks for; `--to` defaults to `now`.
    pub fn config(&self, now: DateTime<Utc>) -> anyhow::Result<ReplayConfig> {
        let to = self.to.unwrap_or(now);
        anyhow::ensure!(
            self.from < to,
            "--from ({}) must come before --to ({to})",
            self.from
        );
        Ok(ReplayConfig {
            broker: self.common.broker.clone(),
            spec: read_fleet(Some(&self.fleet), self.common.faults)?,
            from: self.from,
            to: Some(to),
            speed: None,
            catch_up: false,
            qos: qos(self.common.qos),
            connections: self.common.connections,
        })
    }
}

impl LoadArgs {
    /// The load test this command line asks for.
    pub fn config(&self) -> anyhow::Result<LoadConfig> {
        anyhow::ensure!(
            self.rate.is_finite() && self.rate >= 0.0,
            "--rate must be a number ≥ 0"
        );
        let bound = match (self.count, self.duration) {
            (Some(count), _) => Bound::Count(count),
            (None, Some(duration)) => Bound::Duration(duration),
            (None, None) => anyhow::bail!("--count or --duration is required"),
        };
        Ok(LoadConfig {
            broker: self.common.broker.clone(),
            spec: read_fleet(self.fleet.as_ref(), self.common.faults)?,
            rate: self.rate,
            connections: self.common.connections,
            qos: qos(self.common.qos),
            bound,
            pool: self.pool,
            report: self.report.clone(),
            manifest: self.manifest.clone(),
            progress: true,
            drop: self.drop,
            drop_seed: self.drop_seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Ok(Duration::from_millis(500))),
            ("30s", Ok(Duration::from_secs(30))),
            ("45", Ok(Duration::from_secs(45))),
            ("10m", Ok(Duration::from_secs(600))),
            ("6h", Ok(Duration::from_secs(21_600))),
            ("2d", Ok(Duration::from_secs(172_800))),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), want, "{text}");
        }
        for bad in ["", "m", "10 m", "1.5h", "3w", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn brokers() {
        let b = parse_broker("mosquitto:1883").expect("valid");
        assert_eq!((b.host.as_str(), b.port), ("mosquitto", 1883));
        let b = parse_broker("[::1]:1883").expect("valid");
        assert_eq!((b.host.as_str(), b.port), ("::1", 1883));
        for bad in ["mosquitto", ":1883", "host:0", "host:http"] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_compose_command_line_parses() {
        let cli = Cli::try_parse_from([
            "simulate",
            "run",
            "--broker",
            "mosquitto:1883",
            "--fleet",
            "/etc/simulate/fleet.toml",
            "--speed",
            "1",
        ])
        .expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("not run: {cli:?}");
        };
        assert_eq!(run.speed, 1.0);
        assert_eq!(run.common.qos, 1);
        assert!(run.duration.is_none() && run.from.is_none());
    }

    #[test]
    fn load_needs_a_bound_and_takes_one() {
        let base = ["simulate", "load", "--broker", "h:1", "--rate", "0"];
        assert!(Cli::try_parse_from(base).is_err());
        let with = |extra: &[&str]| {
            Cli::try_parse_from(base.iter().chain(extra).copied()).map(|c| c.command)
        };
        assert!(with(&["--count", "5", "--duration", "5s"]).is_err());
        let Ok(Command::Load(load)) = with(&["--count", "5", "--qos", "0", "--faults", "off"])
        else {
            panic!("load parses");
        };
        let config = load.config().expect("valid");
        assert_eq!(config.bound, Bound::Count(5));
        assert_eq!(config.qos, QoS::AtMostOnce);
        assert_eq!(config.spec.faults, FaultRates::NONE);
        assert!(with(&["--count", "5", "--qos", "2"]).is_err());
    }

    #[test]
    fn backfill_needs_from_before_to() {
        let cli = Cli::try_parse_from([
            "simulate",
            "backfill",
            "--broker",
            "h:1",
            "--fleet",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/simulate/fleet.toml"),
            "--from",
            "2026-03-04T06:00:00Z",
            "--to",
            "2026-03-04T05:00:00Z",
        ])
        .expect("parses");
        let Command::Backfill(backfill) = cli.command else {
            panic!("not backfill");
        };
        let err = backfill.config(Utc::now()).expect_err("from after to");
        assert!(err.to_string().contains("--from"), "{err}");
    }

    #[test]
    fn verify_takes_the_options_of_its_database() {
        let base = ["simulate", "verify", "--manifest", "m.jsonl"];
        let parse = |extra: &[&str]| -> anyhow::Result<VerifyConfig> {
            let cli = Cli::try_parse_from(base.iter().chain(extra).copied())?;
            let Command::Verify(args) = cli.command else {
                anyhow::bail!("not verify");
            };
            args.config()
        };
        let vm = parse(&[
            "--db",
            "victoria-metrics",
            "--url",
            "http://vm:8428",
            "--force-flush",
        ])
        .expect("valid");
        assert_eq!(
            vm.database,
            Database::VictoriaMetrics {
                url: "http://vm:8428".into(),
                force_flush: true
            }
        );
        assert_eq!(
            (vm.timeout, vm.interval, vm.settle, vm.examples),
            (
                Duration::from_secs(60),
                Duration::from_millis(500),
                Duration::ZERO,
                20
            )
        );

        let v2 = parse(&[
            "--db",
            "influxdb-v2",
            "--url",
            "http://i:8086",
            "--org",
            "city",
            "--bucket",
            "telemetry",
            "--token",
            "t0k",
            "--timeout",
            "2m",
            "--interval",
            "250ms",
            "--settle",
            "2s",
        ])
        .expect("valid");
        assert_eq!(
            v2.database,
            Database::InfluxV2 {
                url: "http://i:8086".into(),
                org: "city".into(),
                bucket: "telemetry".into(),
                token: Some(Secret("t0k".into())),
            }
        );
        assert!(!format!("{v2:?}").contains("t0k"), "the token is not shown");
        assert_eq!(
            (v2.timeout, v2.interval, v2.settle),
            (
                Duration::from_secs(120),
                Duration::from_millis(250),
                Duration::from_secs(2)
            )
        );

        let v1 = parse(&[
            "--db",
            "influxdb-v1",
            "--url",
            "http://i:8086",
            "--database",
            "telemetry",
            "--retention-policy",
            "week",
        ])
        .expect("valid");
        assert!(matches!(
            v1.database,
            Database::InfluxV1 { ref retention_policy, .. } if retention_policy.as_deref() == Some("week")
        ));

        let err =
            parse(&["--db", "influxdb-v2", "--url", "u", "--org", "o"]).expect_err("no bucket");
        assert!(err.to_string().contains("--bucket"), "{err}");
        let err = parse(&["--db", "victoria-metrics", "--url", "u", "--database", "d"])
            .expect_err("a v1 option");
        assert!(err.to_string().contains("--db influxdb-v1 only"), "{err}");
        let err = parse(&["--db", "victoria-metrics", "--url", "u", "--interval", "0s"])
            .expect_err("no interval");
        assert!(err.to_string().contains("--interval"), "{err}");
    }

    #[test]
    fn load_takes_drops() {
        let cli = Cli::try_parse_from([
            "simulate",
            "load",
            "--broker",
            "h:1",
            "--rate",
            "0",
            "--count",
            "10",
            "--drop",
            "2",
            "--drop-seed",
            "9",
            "--manifest",
            "m.jsonl",
        ])
        .expect("parses");
        let Command::Load(load) = cli.command else {
            panic!("not load");
        };
        let config = load.config().expect("valid");
        assert_eq!((config.drop, config.drop_seed), (2, 9));
    }
}
