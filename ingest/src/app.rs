//! Wiring: starts the stages, then stops them in order — stop reading, drain
//! the processor (open windows are flushed), flush the sink — so that a
//! shutdown writes everything it took in.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::health::Health;
use crate::live::SharedLive;
use crate::metrics::Metrics;
use crate::mqtt::{DeadLetterPublisher, Source};
use crate::process::{self, Pace, Processor};
use crate::wal::{self, Log, WalStage};

/// Batches between the write-ahead log and the processor.
const WAL_TO_PROCESSOR: usize = 8;
/// Room for dead letters between the stages and their publisher.
const DEAD_LETTER_CHANNEL: usize = 1024;
/// How long the dead-letter publisher may take to send what is left at shutdown.
const DEAD_LETTER_DRAIN: Duration = Duration::from_secs(10);

/// Runs the service until SIGINT or SIGTERM, then shuts down in order. A
/// second signal exits at once.
pub async fn run_until_signal(cfg: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: stopping (a second signal exits at once)");
        trigger.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without finishing the shutdown");
        std::process::exit(130);
    });
    run(cfg, shutdown).await
}

/// Waits for a task that may not exist (then never).
async fn wait_for<T>(
    task: &mut Option<tokio::task::JoinHandle<T>>,
) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Optional ways to watch a running service from the same process. The
/// default watches nothing, and the service behaves as without it.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Updated by the processor with every message and reading it decodes.
    pub live: Option<SharedLive>,
    /// The readiness flags to use, so that the caller sees them change.
    pub health: Option<Health>,
}

/// Runs the service until `shutdown` is cancelled (or a stage fails), then
/// stops it in order.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(cfg, shutdown, Hooks::default()).await
}

/// As [`run`], with [`Hooks`].
pub async fn run_with(
    cfg: Config,
    shutdown: CancellationToken,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let password = cfg.mqtt_password()?;
    let token = cfg.influx_token()?;

    let _broker = if cfg.broker.enabled {
        let b = crate::broker::start(&cfg.broker, &cfg.mqtt).await?;
        tracing::info!(addr = %b.addr(), "embedded MQTT broker started");
        Some(b)
    } else {
        None
    };

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let health = hooks.health.unwrap_or_default();
    let http_stop = CancellationToken::new();
    let http = if cfg.http.enabled {
        Some(
            crate::http::serve(
                cfg.http.listen,
                Arc::new(registry),
                health.clone(),
                http_stop.clone(),
            )
            .await?,
        )
    } else {
        None
    };

    let (message_tx, message_rx) = mpsc::channel(cfg.pipeline.channel_batches);
    let (line_tx, line_rx) = mpsc::channel(cfg.pipeline.channel_batches);
    let log = if cfg.wal.enabled {
        let dir = cfg.wal.dir.clone();
        let limits = wal::Limits {
            segment_bytes: cfg.wal.segment_bytes,
        };
        Some(
            tokio::task::spawn_blocking(move || Log::open(&dir, limits))
                .await
                .context("opening the write-ahead log")??,
        )
    } else {
        None
    };
    let (dead_tx, dead_rx) = mpsc::channel(DEAD_LETTER_CHANNEL);

    let publisher = DeadLetterPublisher::new(
        &cfg.mqtt,
        password.as_deref(),
        &cfg.dead_letter,
        metrics.clone(),
    )
    .context("dead-letter connection")?;
    let dead_letters = tokio::spawn(publisher.run(dead_rx));

    let mut stage = Processor::new(&cfg, metrics.clone())?;
    if let Some(live) = hooks.live {
        stage = stage.with_observer(live);
    }
    // With the log, the source feeds it and it feeds the processor; the
    // sink hands checkpoints back to it and it hands acknowledgements back
    // to the source.
    let mut durable_acks = None;
    let mut checkpoint_tx = None;
    let (processor_rx, wal_task) = match log {
        Some((log, recovery)) => {
            if let Some(cp) = &recovery.checkpoint {
                if let Err(e) = stage.restore_windows(&cp.windows) {
                    tracing::warn!(error = %e, "window state not restored from the checkpoint; windows start empty");
                }
            }
            // The log is the buffer: past it, a short channel is enough to
            // keep the processor busy, and keeps what is held in memory small.
            let (to_processor, processor_rx) =
                mpsc::channel(cfg.pipeline.channel_batches.min(WAL_TO_PROCESSOR));
            let (ack_tx, ack_rx) = mpsc::unbounded_channel();
            let (cp_tx, cp_rx) = mpsc::unbounded_channel();
            durable_acks = Some(ack_rx);
            checkpoint_tx = Some(cp_tx);
            let wal = WalStage::new(
                log,
                &recovery,
                cfg.wal.max_bytes,
                metrics.clone(),
                health.clone(),
            );
            let task = tokio::spawn(wal.run(wal::stage::Links {
                input: message_rx,
                output: to_processor,
                acks: ack_tx,
                checkpoints: cp_rx,
            }));
            (processor_rx, Some(task))
        }
        None => (message_rx, None),
    };
    let sink = tokio::spawn(crate::sink::run(
        cfg.sink.clone(),
        token,
        line_rx,
        dead_tx.clone(),
        checkpoint_tx,
        metrics.clone(),
        health.clone(),
    ));
    let processor = tokio::spawn(process::run(
        stage,
        processor_rx,
        line_tx,
        dead_tx,
        Pace {
            idle_advance: Duration::from_secs(u64::from(cfg.windows.idle_advance_s)),
            checkpoint_every: cfg
                .wal
                .enabled
                .then(|| Duration::from_millis(cfg.wal.checkpoint_interval_ms)),
        },
        shutdown.clone(),
    ));
    let source_stop = CancellationToken::new();
    let source = Source::new(
        &cfg.mqtt,
        password.as_deref(),
        cfg.pipeline.source_batch,
        message_tx,
        metrics.clone(),
        health.clone(),
    )
    .context("MQTT connection")?;
    let source = match durable_acks {
        Some(acks) => source.with_durable_acks(acks),
        None => source,
    };
    let source = tokio::spawn(source.run(source_stop.clone()));
    tracing::info!(
        broker = %format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
        sink = ?cfg.sink.kind,
        "ingest running"
    );

    let mut sink = sink;
    let mut wal_task = wal_task;
    let early = tokio::select! {
        () = shutdown.cancelled() => None,
        r = &mut sink => Some(r),
        r = wait_for(&mut wal_task) => Some(match r {
            Ok(Ok(())) => Ok(Err(anyhow::anyhow!("the write-ahead log stopped unexpectedly"))),
            Ok(Err(e)) => Ok(Err(anyhow::Error::new(e))),
            Err(e) => Err(e),
        }),
    };
    if let Some(r) = early {
        // The sink ends only when its input closes; ending first is a failure.
        source_stop.cancel();
        let _ = source.await;
        let _ = processor.await;
        http_stop.cancel();
        dead_letters.abort();
        if let Some(task) = wal_task {
            task.abort();
        }
        return match r {
            Ok(Err(e)) => Err(e.context("stage failed")),
            Ok(Ok(())) => Err(anyhow::anyhow!("the sink stopped unexpectedly")),
            Err(e) => Err(anyhow::anyhow!("sink task failed: {e}")),
        };
    }
    tracing::info!("stopping: no more reading from the broker");
    source_stop.cancel();
    if let Err(e) = source.await {
        tracing::error!(error = %e, "MQTT source task failed");
    }
    if let Err(e) = processor.await {
        tracing::error!(error = %e, "processor task failed");
    }
    tracing::info!("processor drained; flushing the sink");
    let sunk = sink.await;
    let logged = match wal_task {
        Some(task) => match task.await {
            Ok(r) => r.map_err(anyhow::Error::new),
            Err(e) => Err(anyhow::anyhow!("write-ahead log task failed: {e}")),
        },
        None => Ok(()),
    };
    match tokio::time::timeout(DEAD_LETTER_DRAIN, dead_letters).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "dead-letter task failed"),
        Err(_) => tracing::warn!("dead letters left unpublished at shutdown"),
    }
    http_stop.cancel();
    if let Some((_, task)) = http {
        let _ = task.await;
    }
    match sunk {
        Ok(Ok(())) => {
            logged?;
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Ok(Err(e)) => Err(e.context("sink")),
        Err(e) => Err(anyhow::anyhow!("sink task failed: {e}")),
    }
}
