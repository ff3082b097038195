//! `ingest demo`: the service (by default its embedded broker and the file
//! sink) fed by a small simulated fleet of the five default communes in
//! accelerated time, with a summary on stderr refreshed every second. The
//! per-commune figures are what the service decoded ([`crate::live`]), not
//! the simulator's own state.
//!
//! The simulated clock starts a week back and runs `--speed` times faster
//! than the wall clock until it catches up with it (after about 2 h 50 min
//! at the default 60×), then in real time: readings never come from the
//! future, which the service would reject. The summary says so once, and
//! shows the pace in its first line.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use simulators::publish::pace::Pace;
use simulators::publish::{Broker, ReplayConfig};
use simulators::FleetSpec;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::{self, Hooks};
use crate::config::Config;
use crate::health::Health;
use crate::live::{CommuneFigures, LiveState, SharedLive};

/// How often the summary is redrawn.
const REFRESH: Duration = Duration::from_secs(1);
/// How long the service may take to connect to its broker.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How far in the past the simulated clock starts by default: a week of
/// accelerated time before it catches up with the wall clock.
const HEAD_START: Duration = Duration::from_secs(7 * 86_400);

/// What `ingest demo` runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    /// Stop after this much wall time; `None` runs until shutdown.
    pub duration: Option<Duration>,
    /// Each commune keeps one device in `divisor` of each domain (at least one).
    pub divisor: u32,
    /// Draw the live summary on stderr.
    pub summary: bool,
    /// How far behind the wall clock the simulated clock starts; it runs at
    /// `speed` until it catches up, then in real time.
    pub head_start: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            speed: 60.0,
            duration: None,
            divisor: 20,
            summary: true,
            head_start: HEAD_START,
        }
    }
}

/// What a demo run took in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOutcome {
    /// Messages the service took in (decoded or rejected).
    pub messages: u64,
    /// Readings it decoded.
    pub readings: u64,
    /// The figures of each commune at the end.
    pub communes: Vec<CommuneFigures>,
    /// Rejected messages by reason, only the reasons seen.
    pub rejections: Vec<(&'static str, u64)>,
    /// How long after the start the simulated clock caught up with the wall
    /// clock and switched to real time, if it did before the end.
    pub real_time_after: Option<Duration>,
}

/// The default fleet with each commune's device counts divided by `divisor`
/// (at least one device per domain).
pub fn fleet(divisor: u32) -> FleetSpec {
    let mut spec = FleetSpec::default();
    let divisor = divisor.max(1);
    for c in &mut spec.communes {
        for n in [&mut c.lighting, &mut c.waste, &mut c.traffic] {
            *n = (*n / divisor).max(1);
        }
    }
    spec
}

/// Runs the demo until SIGINT or SIGTERM, or until `--duration`; a second
/// signal exits at once.
pub async fn run_until_signal(cfg: Config, options: DemoOptions) -> anyhow::Result<DemoOutcome> {
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        app::wait_for_signal().await;
        tracing::info!("signal received: stopping (a second signal exits at once)");
        trigger.cancel();
        app::wait_for_signal().await;
        std::process::exit(130);
    });
    run(cfg, options, shutdown).await
}

/// Runs the service and the simulated fleet until `shutdown` is cancelled or
/// `options.duration` has passed, then stops the fleet and shuts the
/// service down in order.
pub async fn run(
    cfg: Config,
    options: DemoOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<DemoOutcome> {
    anyhow::ensure!(
        options.speed.is_finite() && options.speed > 0.0,
        "--speed must be a positive number"
    );
    let live = LiveState::shared(cfg.windows.full_threshold);
    let health = Health::default();
    let broker = Broker {
        host: cfg.mqtt.host.clone(),
        port: cfg.mqtt.port,
    };
    let service_stop = CancellationToken::new();
    let mut service = tokio::spawn(app::run_with(
        cfg,
        service_stop.clone(),
        Hooks {
            live: Some(live.clone()),
            health: Some(health.clone()),
        },
    ));
    if let Err(e) = wait_ready(&health, &mut service).await {
        service_stop.cancel();
        return Err(match service.await {
            Ok(Err(service_error)) => service_error,
            _ => e,
        });
    }

    let head_start = TimeDelta::from_std(options.head_start)
        .map_err(|_| anyhow::anyhow!("the head start is too long"))?;
    let wall_start = Utc::now();
    let from = wall_start - head_start;
    let pace = Pace::catching_up(from, options.speed, wall_start);
    let replay_stop = CancellationToken::new();
    let mut replay = tokio::spawn(simulators::publish::replay(
        ReplayConfig {
            broker,
            spec: fleet(options.divisor),
            from,
            to: None,
            speed: Some(options.speed),
            catch_up: true,
            qos: rumqttc::QoS::AtLeastOnce,
            connections: 1,
        },
        replay_stop.clone(),
    ));

    let deadline = options.duration.map(|d| Instant::now() + d);
    let started = Instant::now();
    let mut view = Summary::new(&live, pace, options.summary);
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failure = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = sleep_until(deadline) => break,
            r = &mut service => {
                // The service stops by itself only on a failure.
                failure = Some(match r {
                    Ok(Err(e)) => e,
                    Ok(Ok(())) => anyhow::anyhow!("the service stopped unexpectedly"),
                    Err(e) => anyhow::anyhow!("service task failed: {e}"),
                });
                break;
            }
            r = &mut replay => {
                let e = match r {
                    Ok(Err(e)) => e.context("simulated fleet"),
                    Ok(Ok(_)) => anyhow::anyhow!("the simulated fleet stopped unexpectedly"),
                    Err(e) => anyhow::anyhow!("simulated fleet task failed: {e}"),
                };
                replay_stop.cancel();
                service_stop.cancel();
                let _ = service.await;
                return Err(e);
            }
            _ = tick.tick() => view.draw(),
        }
    }
    replay_stop.cancel();
    match replay.await {
        Ok(Ok(s)) => {
            tracing::info!(queued = s.queued, sent = s.sent, "simulated fleet stopped");
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "simulated fleet"),
        Err(e) => tracing::warn!(error = %e, "simulated fleet task failed"),
    }
    if let Some(e) = failure {
        return Err(e);
    }
    service_stop.cancel();
    service
        .await
        .map_err(|e| anyhow::anyhow!("service task failed: {e}"))??;
    view.draw();
    let elapsed = started.elapsed();
    let live = LiveState::lock(&live);
    Ok(DemoOutcome {
        messages: live.messages(),
        readings: live.readings(),
        communes: live.figures(),
        rejections: live.rejections().collect(),
        real_time_after: pace.catches_up_after().filter(|at| *at <= elapsed),
    })
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Waits until the service is connected to its broker.
async fn wait_ready(
    health: &Health,
    service: &mut JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let give_up = Instant::now() + READY_TIMEOUT;
    while !health.broker_connected() {
        anyhow::ensure!(
            Instant::now() < give_up,
            "the service did not connect to its MQTT broker within {READY_TIMEOUT:?}"
        );
        tokio::select! {
            r = &mut *service => {
                return match r {
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(())) => Err(anyhow::anyhow!("the service stopped before it was ready")),
                    Err(e) => Err(anyhow::anyhow!("service task failed: {e}")),
                };
            }
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    Ok(())
}

/// The live summary: its previous state, for rates, and how many lines to
/// redraw over.
#[derive(Debug)]
struct Summary {
    live: SharedLive,
    pace: Pace,
    enabled: bool,
    terminal: bool,
    start: Instant,
    last: Option<(Instant, u64)>,
    drawn_lines: usize,
    /// Whether the switch to real time has been announced.
    announced: bool,
}

impl Summary {
    fn new(live: &SharedLive, pace: Pace, enabled: bool) -> Self {
        Self {
            live: live.clone(),
            pace,
            enabled,
            terminal: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last: None,
            drawn_lines: 0,
            announced: false,
        }
    }

    fn draw(&mut self) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let (messages, rejections, communes) = {
            let live = LiveState::lock(&self.live);
            (
                live.messages(),
                live.rejections().collect::<Vec<_>>(),
                live.figures(),
            )
        };
        let rate = match self.last {
            Some((at, before)) if now > at => {
                messages.saturating_sub(before) as f64 / (now - at).as_secs_f64()
            }
            _ => 0.0,
        };
        self.last = Some((now, messages));
        let elapsed = now - self.start;
        let text = render(
            self.pace.simulated(elapsed),
            self.pace.speed_at(elapsed),
            rate,
            messages,
            &rejections,
            &communes,
        );
        let mut out = String::new();
        if self.terminal && self.drawn_lines > 0 {
            // Back to the top of the previous summary, and clear below.
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        // Once, above the summary, where the redraws leave it.
        if let Some(at) = self.pace.catches_up_after().filter(|at| elapsed >= *at) {
            if !self.announced {
                self.announced = true;
                out.push_str(&caught_up(self.pace.simulated(at)));
            }
        }
        out.push_str(&text);
        self.drawn_lines = text.lines().count();
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(out.as_bytes());
        let _ = stderr.flush();
    }
}

/// The line that says the simulated clock has caught up, at `at`.
fn caught_up(at: DateTime<Utc>) -> String {
    format!(
        "{}: the simulated clock has caught up with the wall clock; real time from now on\n",
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

/// The summary text: the simulated time and its pace (simulated seconds per
/// second), rates, the rejections seen, and a line per commune.
pub fn render(
    simulated: DateTime<Utc>,
    speed: f64,
    rate: f64,
    messages: u64,
    rejections: &[(&'static str, u64)],
    communes: &[CommuneFigures],
) -> String {
    let mut s = String::new();
    let pace = if speed == 1.0 {
        "real time".to_owned()
    } else {
        format!("×{speed}")
    };
    let _ = writeln!(
        s,
        "simulated {} ({pace})  {rate:>8.1} msg/s  {messages} messages",
        simulated.format("%Y-%m-%d %H:%M UTC"),
    );
    let rejected: Vec<String> = rejections
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if !rejected.is_empty() {
        let _ = writeln!(s, "rejected: {}", rejected.join(", "));
    }
    let _ = writeln!(
        s,
        "{:<12} {:>9} {:>7} {:>11} {:>16}",
        "commune", "lamps on", "failed", "bins full", "lanes congested"
    );
    for c in communes {
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>7} {:>11} {:>16}",
            c.commune,
            format!("{}/{}", c.lamps_on, c.lamps),
            c.lamps_failed,
            format!("{}/{}", c.bins_full, c.bins),
            format!("{}/{}", c.lanes_congested, c.lanes),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_is_the_default_one_scaled_down() {
        let spec = fleet(20);
        let ids: Vec<&str> = spec.communes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["rabat", "casablanca", "chefchaouen", "benguerir", "berkane"]
        );
        let rabat = &spec.communes[0];
        assert_eq!((rabat.lighting, rabat.waste, rabat.traffic), (20, 7, 2));
        let chefchaouen = &spec.communes[2];
        assert_eq!(chefchaouen.traffic, 1, "never below one device");
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn the_summary_shows_only_reasons_seen() {
        let at = DateTime::from_timestamp(1_795_896_000, 0).unwrap_or_default();
        let communes = [CommuneFigures {
            commune: "rabat".to_owned(),
            lamps: 20,
            lamps_on: 12,
            lamps_failed: 1,
            bins: 7,
            bins_full: 3,
            lanes: 4,
            lanes_congested: 2,
        }];
        let text = render(
            at,
            60.0,
            81.5,
            400,
            &[("invalid_json", 2), ("too_old", 0)],
            &communes,
        );
        assert!(text.starts_with("simulated 2026-11-28 "), "{text}");
        assert!(text.contains(" UTC (×60) "), "{text}");
        assert!(text.contains("81.5 msg/s"), "{text}");
        assert!(text.contains("rejected: invalid_json 2\n"), "{text}");
        assert!(!text.contains("too_old"), "{text}");
        assert!(text.contains("12/20"), "{text}");
        assert!(text.contains("3/7"), "{text}");
        assert!(text.contains("2/4"), "{text}");
        let quiet = render(at, 1.0, 0.0, 0, &[], &[]);
        assert!(!quiet.contains("rejected"), "{quiet}");
        assert!(quiet.contains(" UTC (real time) "), "{quiet}");
    }

    #[test]
    fn the_demo_clock_switches_to_real_time_when_it_catches_up() {
        // The clock of a default demo started at `wall`.
        let wall = DateTime::from_timestamp(1_795_896_000, 0).unwrap_or_default();
        let options = DemoOptions::default();
        let head = TimeDelta::from_std(options.head_start).unwrap_or_default();
        let pace = Pace::catching_up(wall - head, options.speed, wall);
        let switch = pace.catches_up_after().expect("it catches up");
        // A week at 60×: 604,800 s / 59, about 2 h 51 min.
        assert_eq!(switch.as_secs(), 10_250);
        let minute = Duration::from_secs(60);
        assert_eq!(pace.speed_at(switch.saturating_sub(minute)), 60.0);
        assert_eq!(pace.speed_at(switch), 1.0);
        // Never ahead of the wall clock, before or long after the switch.
        for elapsed in [
            Duration::ZERO,
            switch.saturating_sub(minute),
            switch,
            switch * 2,
            switch * 10,
        ] {
            let now = wall + TimeDelta::from_std(elapsed).unwrap_or_default();
            let shown = pace.simulated(elapsed);
            assert!(shown <= now, "{elapsed:?}: {shown} > {now}");
            assert!(
                now - shown < TimeDelta::seconds(1) || elapsed < switch,
                "{elapsed:?}"
            );
        }
        assert_eq!(
            caught_up(pace.simulated(switch)),
            "2026-11-28 22:50 UTC: the simulated clock has caught up with the wall clock; real time from now on\n"
        );
    }
}
