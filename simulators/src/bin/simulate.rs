//! `simulate`: publishes a simulated fleet to an MQTT broker (`run`,
//! `backfill`), measures the broker's intake (`load`), or checks a load
//! test against the database (`verify`). See `simulate --help`,
//! `simulators::publish` and `simulators::verify`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use simulators::publish::cli::{Cli, Command};
use simulators::publish::{load, replay};
use simulators::verify::{verify, Manifest};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let workers = match &cli.command {
        Command::Load(args) => args.workers,
        Command::Run(_) | Command::Backfill(_) | Command::Verify(_) => 0,
    };
    let runtime = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(on_signal(shutdown.clone()));
        let now = chrono::Utc::now();
        match cli.command {
            Command::Run(args) => {
                replay(args.config(now)?, shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Backfill(args) => {
                let config = args.config(now)?;
                if now - config.from > chrono::TimeDelta::days(30) {
                    tracing::warn!(
                        from = %config.from,
                        "the period starts over 30 days ago: the service rejects such readings by default"
                    );
                }
                replay(config, shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Load(args) => {
                let report = load(args.config()?, shutdown).await?;
                tracing::info!("{}", report.summary());
                let json = serde_json::to_string(&report).context("serialising the report")?;
                // Nothing to do if stdout is closed.
                let _ = writeln!(std::io::stdout(), "{json}");
                Ok(if report.complete() {
                    ExitCode::SUCCESS
                } else {
                    tracing::error!("not every message reached the broker");
                    ExitCode::FAILURE
                })
            }
            Command::Verify(args) => {
                let config = args.config()?;
                let path = args.manifest();
                let manifest = Manifest::read(path).context("reading the manifest")?;
                let report = verify(&manifest, &config, &shutdown).await?;
                if let Some(path) = &args.report {
                    report
                        .write(path)
                        .with_context(|| format!("writing the report {}", path.display()))?;
                }
                // Nothing to do if stdout is closed.
                let _ = write!(std::io::stdout(), "{}", report.text());
                Ok(if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        }
    })
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM (`docker stop`).
async fn on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: flushing what is queued");
    shutdown.cancel();
}
