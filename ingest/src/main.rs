//! The `ingest` command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
