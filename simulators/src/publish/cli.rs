//! The command line of `simulate`: subcommands, their options, and the
//! conversion into the configurations of [`replay`](super::replay()) and
//! [`load`](super::load()).

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

/// Publishes a simulated fleet of street lights, waste containers and traffic
/// counters to an MQTT broker, in every wire format the service reads.
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
    /// itself after `--count` messages or `--duration`.
    Load(LoadArgs),
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
    /// Writes one JSON line per message handed to the broker: its identity
    /// (domain, commune, device, lane, event time), topic, publish time and,
    /// at QoS 1, whether it was acknowledged.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Tokio worker threads; 0 runs everything on the main thread.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
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
}
