//! End-to-end benchmark: mosquitto and VictoriaMetrics on loopback, the
//! `ingest` service between them, and `simulate load` publishing N messages
//! across many devices and the three domains at full speed. Timed from the
//! first message the service receives (the simulator renders its messages
//! first) until the database has acknowledged every point, then the
//! points are checked to be queryable. Prints messages/s, the service's CPU
//! seconds per message and its peak RSS.
//!
//! Run through `scripts/bench-e2e.sh`, which builds the binaries first.

#![allow(clippy::print_stdout)] // The report is the program's output.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use harness::{Mosquitto, VictoriaMetrics};

struct Args {
    count: u64,
    qos: u8,
    connections: u32,
    /// The write-ahead log (durability before acknowledgement).
    wal: bool,
    /// Event-time windows and rollups.
    windows: bool,
    ingest: PathBuf,
    simulate: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        count: 1_000_000,
        qos: 1,
        connections: 8,
        wal: true,
        windows: true,
        ingest: PathBuf::from("target/release/ingest"),
        simulate: PathBuf::from("target/release/simulate"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--count" => a.count = value.parse()?,
            "--qos" => a.qos = value.parse()?,
            "--connections" => a.connections = value.parse()?,
            "--wal" => a.wal = on_off(&flag, &value)?,
            "--windows" => a.windows = on_off(&flag, &value)?,
            "--ingest" => a.ingest = value.into(),
            "--simulate" => a.simulate = value.into(),
            _ => bail!("unknown flag {flag}"),
        }
    }
    // The service runs in a temporary folder: resolve the paths first.
    a.ingest = std::fs::canonicalize(&a.ingest)
        .with_context(|| format!("{} (build it first)", a.ingest.display()))?;
    a.simulate = std::fs::canonicalize(&a.simulate)
        .with_context(|| format!("{} (build it first)", a.simulate.display()))?;
    Ok(a)
}

fn on_off(flag: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => bail!("{flag} takes on or off"),
    }
}

/// User + system CPU seconds and peak RSS (kB) of a process, from /proc.
fn usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .context("VmHWM")?
        .parse()?;
    Ok((ticks / 100.0, hwm))
}

async fn metric(client: &reqwest::Client, url: &str, line_prefix: &str) -> anyhow::Result<f64> {
    let text = client.get(url).send().await?.text().await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args()?;
    let broker = Mosquitto::launch().await?;
    let vm = VictoriaMetrics::launch_with(&["-dedup.minScrapeInterval=1ms"]).await?;
    let dir = tempfile::tempdir()?;
    let http = free_port()?;
    let config = dir.path().join("ingest.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nenabled = false\n[mqtt]\nport = {}\nclient_id = \"bench-ingest\"\n\
             [sink]\nkind = \"influxdb_v2\"\n[sink.influxdb]\nurl = \"{}\"\ntoken = \"bench\"\n\
             [windows]\nenabled = {}\nmax_open_windows = 400000\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [wal]\nenabled = {}\n[log]\nlevel = \"warn,rumqttd=off\"\n",
            broker.port(),
            vm.base_url(),
            a.windows,
            a.wal
        ),
    )?;
    let mut service = Command::new(&a.ingest)
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", a.ingest.display()))?;
    let pid = service.id();
    let client = reqwest::Client::new();
    let metrics = format!("http://127.0.0.1:{http}/metrics");
    let ready = format!("http://127.0.0.1:{http}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(&ready).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("the service did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = dir.path().join("report.json");
    let mut load = Command::new(&a.simulate)
        .args(["load", "--broker"])
        .arg(format!("127.0.0.1:{}", broker.port()))
        .args(["--rate", "0", "--faults", "off"])
        .args(["--qos", &a.qos.to_string()])
        .args(["--connections", &a.connections.to_string()])
        .args(["--count", &a.count.to_string()])
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .spawn()?;
    // The clock starts with the first message the service receives, not
    // with the simulator, which renders its pool of messages first.
    let started = loop {
        if metric(&client, &metrics, "ingest_messages_received_total").await? > 0.0 {
            break Instant::now();
        }
        if let Some(status) = load.try_wait()? {
            bail!("simulate load ended before publishing: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (cpu0, _) = usage(pid)?;
    // The machine's other tenants, over the same interval.
    let others = [("mosquitto", broker.pid()), ("VictoriaMetrics", vm.pid())];
    let others0: Vec<f64> = others
        .iter()
        .map(|(_, p)| p.and_then(|p| usage(p).ok()).map_or(0.0, |u| u.0))
        .collect();
    let status = tokio::task::spawn_blocking(move || load.wait()).await??;
    if !status.success() {
        bail!("simulate load failed");
    }
    let published = started.elapsed();
    let target = a.count as f64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let written = loop {
        let raw = metric(
            &client,
            &metrics,
            "ingest_points_written_total{kind=\"raw\"}",
        )
        .await?;
        if raw >= target {
            break raw;
        }
        if Instant::now() > deadline {
            bail!("only {raw} of {target} points written after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    let (cpu1, rss_kb) = usage(pid)?;
    let others1: Vec<f64> = others
        .iter()
        .map(|(_, p)| p.and_then(|p| usage(p).ok()).map_or(0.0, |u| u.0))
        .collect();
    vm.flush().await?;
    let queryable = vm
        .export_matching(
            "{__name__=~\"(lighting|waste|traffic)_(power_w|fill_ratio|vehicle_count)\"}",
        )
        .await?
        .iter()
        .map(|s| s.values.len())
        .sum::<usize>();
    let windows = metric(
        &client,
        &metrics,
        "ingest_points_written_total{kind=\"window\"}",
    )
    .await?;
    let rejected = metric(&client, &metrics, "ingest_messages_rejected_total")
        .await
        .unwrap_or(0.0);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = service.wait();
    let cpu = cpu1 - cpu0;
    println!("messages:              {}", a.count);
    println!("qos / connections:     {} / {}", a.qos, a.connections);
    println!(
        "write-ahead log:       {}",
        if a.wal { "on (ack after fsync)" } else { "off" }
    );
    println!(
        "windows:               {}",
        if a.windows {
            "on (1 min per device, 15 min per commune)"
        } else {
            "off"
        }
    );
    println!("published in:          {:.2} s", published.as_secs_f64());
    println!("all written in:        {:.2} s", elapsed.as_secs_f64());
    println!(
        "end to end:            {:.0} messages/s",
        target / elapsed.as_secs_f64()
    );
    println!("raw points written:    {written}");
    println!("queryable samples of power_w/fill_ratio/vehicle_count: {queryable}");
    println!(
        "service CPU:           {cpu:.2} s = {:.2} µs per message",
        cpu / target * 1e6
    );
    println!("service peak RSS:      {:.1} MB", rss_kb as f64 / 1024.0);
    let wall = elapsed.as_secs_f64();
    println!("service cores:         {:.2}", cpu / wall);
    for (i, (name, _)) in others.iter().enumerate() {
        let used = others1[i] - others0[i];
        println!(
            "{:<22} {used:.2} s CPU = {:.2} cores",
            format!("{name}:"),
            used / wall
        );
    }
    let vm_metrics = format!("{}/metrics", vm.base_url());
    let rows = metric(
        &client,
        &vm_metrics,
        "vm_rows_inserted_total{type=\"influx\"}",
    )
    .await?;
    let series = metric(&client, &vm_metrics, "vm_new_timeseries_created_total").await?;
    println!(
        "database samples:      {rows:.0} = {:.1} per message, window points {windows:.0} ({series:.0} series)",
        rows / target
    );
    if rejected > 0.0 {
        println!("rejected (first reason line): {rejected}");
    }
    Ok(())
}
