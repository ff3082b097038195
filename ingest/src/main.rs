//! The `ingest` command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ingest::config::Config;

/// Municipal telemetry from MQTT to InfluxDB: street lights, waste
/// containers and traffic counters, in native JSON, SenML, The Things Stack
/// and ChirpStack formats.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service.
    ///
    /// With no configuration at all it starts an embedded MQTT broker on
    /// 127.0.0.1:1883 and writes rotated line-protocol files under ./data.
    /// Settings come from built-in defaults, then the file given with
    /// --config, then environment variables such as INGEST__MQTT__HOST.
    /// SIGINT or SIGTERM stops reading, flushes open windows and the sink,
    /// and exits 0.
    Run {
        /// TOML configuration file (see ingest/ingest.example.toml).
        #[arg(long, short, value_name = "FILE", env = "INGEST_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the service fed by a small simulated fleet, with a live summary.
    ///
    /// Starts the service as `run` does (by default the embedded broker on
    /// 127.0.0.1:1883 and files under ./data) and publishes to its broker a
    /// fleet of the five default communes, one device in twenty of each
    /// domain, in accelerated time. The simulated clock starts a week ago.
    /// Every second stderr shows messages per second, rejections by reason
    /// and, per commune, what the service decoded: lamps on and failed, bins
    /// at or above windows.full_threshold, congested lanes. Ctrl-C stops the
    /// fleet, then the service in order.
    Demo {
        /// Simulated seconds per wall-clock second.
        #[arg(long, default_value_t = 60.0, value_parser = parse_speed)]
        speed: f64,
        /// TOML configuration file, layered as for `run` (e.g. to write to
        /// InfluxDB).
        #[arg(long, short, value_name = "FILE", env = "INGEST_CONFIG")]
        config: Option<PathBuf>,
        /// Stop after this much wall time (`90s`, `10m`, `1h`).
        #[arg(long, value_parser = simulators::publish::cli::parse_duration)]
        duration: Option<Duration>,
    },
    /// Check a configuration file and print the effective configuration.
    ///
    /// Applies the same layers as `run` (defaults, the file, INGEST__*
    /// environment variables), prints the result as TOML with secrets
    /// masked, and exits 0. A bad key or value is named with its path and
    /// the reason, and the exit status is 1.
    CheckConfig {
        /// TOML configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[allow(clippy::print_stdout)] // check-config prints the configuration.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(Some(&file)) {
            Ok(cfg) => {
                print!("{}", cfg.masked_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => match run(config.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Demo {
            speed,
            config,
            duration,
        } => match demo(config.as_deref(), speed, duration) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    ingest::logging::init(&cfg.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ingest")
        .build()?;
    runtime.block_on(ingest::app::run_until_signal(cfg))
}

fn demo(config: Option<&Path>, speed: f64, duration: Option<Duration>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let mut log = cfg.log.clone();
    if log == ingest::config::LogConfig::default() {
        // The summary owns the terminal: only warnings and errors interleave.
        "warn,rumqttd=off".clone_into(&mut log.level);
    }
    ingest::logging::init(&log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ingest")
        .build()?;
    let options = ingest::demo::DemoOptions {
        speed,
        duration,
        ..ingest::demo::DemoOptions::default()
    };
    runtime.block_on(ingest::demo::run_until_signal(cfg, options))?;
    Ok(())
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}
