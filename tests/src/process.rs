//! One server as a child process: its temporary folder, its log, its readiness
//! probe, and its lifecycle (start, graceful stop, kill, restart on the same port).

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tempfile::TempDir;

/// How long a server may take to answer its readiness probe.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the readiness probe and the exit check run.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How many times a first start is tried on fresh ports when the server exits
/// before it is ready (another process took the port in between).
const START_ATTEMPTS: usize = 3;
/// How many lines of the log an error message shows.
const TAIL_LINES: usize = 40;

/// A free TCP port on 127.0.0.1, found by binding port 0.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let [port] = free_ports()?;
    Ok(port)
}

/// `N` distinct free TCP ports on 127.0.0.1: each is held until all are found.
pub(crate) fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
        *port = listener
            .local_addr()
            .context("reading the bound port")?
            .port();
        listeners.push(listener);
    }
    Ok(ports)
}

/// How to tell that a started server serves.
#[derive(Debug, Clone)]
pub(crate) enum Readiness {
    /// A TCP connection is accepted.
    Tcp(SocketAddr),
    /// A GET of this URL answers with a 2xx status.
    Http {
        url: String,
        client: reqwest::Client,
    },
}

impl Readiness {
    async fn probe(&self) -> bool {
        match self {
            Readiness::Tcp(addr) => matches!(
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                    .await,
                Ok(Ok(_))
            ),
            Readiness::Http { url, client } => client
                .get(url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success()),
        }
    }
}

/// What a server needs to be started in a prepared folder.
#[derive(Debug)]
pub(crate) struct Spec<T> {
    /// Command-line arguments.
    pub args: Vec<OsString>,
    /// How to tell it is ready.
    pub ready: Readiness,
    /// What the caller chose while preparing (ports, URLs).
    pub chosen: T,
}

/// A start that did not reach readiness.
#[derive(Debug)]
pub(crate) struct StartFailure {
    /// The process exited on its own (a taken port, a bad configuration).
    exited: bool,
    message: String,
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartFailure {}

/// The controls every server of the harness has over its `process` field:
/// its folder, process id, whether it runs, a graceful stop, a kill (as in a
/// crash), a start on the same ports with the same data (waiting until it is
/// ready; nothing if it runs), a restart, and the tail of its log.
macro_rules! process_controls {
    () => {
        /// The server's temporary folder (configuration, data, log).
        pub fn dir(&self) -> &std::path::Path {
            self.process.dir()
        }

        /// The server's process id, while it runs (to read its CPU time).
        pub fn pid(&self) -> Option<u32> {
            self.process.pid()
        }

        /// Whether the server process is running.
        pub fn is_running(&mut self) -> bool {
            self.process.is_running()
        }

        /// Stops the server gracefully (see the type's documentation for
        /// what it keeps).
        pub async fn stop(&mut self) -> anyhow::Result<()> {
            self.process.stop().await
        }

        /// Kills the server, as in a crash.
        pub fn kill(&mut self) {
            self.process.kill();
        }

        /// Starts the server again on the same ports with the same data, and
        /// waits until it is ready. Does nothing if it is running.
        pub async fn start(&mut self) -> anyhow::Result<()> {
            Ok(self.process.start().await?)
        }

        /// Stops the server gracefully and starts it again.
        pub async fn restart(&mut self) -> anyhow::Result<()> {
            self.stop().await?;
            self.start().await
        }

        /// The last lines of the server's log.
        pub fn log_tail(&self) -> String {
            self.process.log_tail()
        }
    };
}
pub(crate) use process_controls;

/// A server process; killed and reaped on drop.
pub(crate) struct ServerProcess {
    label: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    ready: Readiness,
    log_path: PathBuf,
    child: Option<Child>,
    // Last, so the folder goes after the process is gone.
    dir: TempDir,
}

impl fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerProcess")
            .field("label", &self.label)
            .field("dir", &self.dir.path())
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl ServerProcess {
    /// Prepares a fresh temporary folder with `prepare` (which picks ports and
    /// writes configuration files there) and starts `program` in it. When the
    /// process exits before it is ready, tries again with a fresh folder, so
    /// fresh ports.
    pub(crate) async fn launch<T>(
        label: &'static str,
        program: &Path,
        mut prepare: impl FnMut(&Path) -> anyhow::Result<Spec<T>>,
    ) -> anyhow::Result<(Self, T)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = tempfile::Builder::new()
                .prefix(&format!("harness-{label}-"))
                .tempdir()
                .context("creating the server's temporary folder")?;
            let spec = prepare(dir.path())
                .with_context(|| format!("preparing {label} in {}", dir.path().display()))?;
            let mut process = ServerProcess {
                label,
                program: program.to_path_buf(),
                args: spec.args,
                ready: spec.ready,
                log_path: dir.path().join("server.log"),
                child: None,
                dir,
            };
            match process.start().await {
                Ok(()) => return Ok((process, spec.chosen)),
                Err(failure) if failure.exited && attempt < START_ATTEMPTS => {}
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// The server's temporary folder.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (it has not been stopped, killed, or exited
    /// on its own).
    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts the process, on the same ports and data as before, and waits for it
    /// to be ready. Does nothing if it is running.
    pub(crate) async fn start(&mut self) -> Result<(), StartFailure> {
        if self.is_running() {
            return Ok(());
        }
        self.reap();
        let spawned = self.spawn();
        let child =
            spawned.map_err(|err| self.failure(false, &format!("cannot spawn: {err:#}")))?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return Err(
                    self.failure(true, &format!("exited with {status} before it was ready"))
                );
            }
            if self.ready.probe().await {
                // The answer may come from another process that took the port
                // meanwhile; then ours has usually exited on its bind error.
                if let Some(status) = self.exit_status() {
                    return Err(self.failure(true, &format!("exited with {status} while starting")));
                }
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                self.kill();
                return Err(self.failure(false, &format!("not ready after {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops the process gracefully (SIGTERM, so it saves its state), waiting
    /// for it to exit; kills it if it takes longer than a bound.
    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(child) = &mut self.child else {
            return Ok(());
        };
        if child
            .try_wait()
            .context("checking the server process")?
            .is_none()
        {
            // The `kill` command keeps this crate free of `unsafe` and libc.
            let terminated = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !terminated.is_ok_and(|status| status.success()) {
                eprintln!("{}: SIGTERM could not be sent; killing it", self.label);
                self.kill();
                return Ok(());
            }
            let started = Instant::now();
            while matches!(child.try_wait(), Ok(None)) {
                if started.elapsed() > STOP_TIMEOUT {
                    eprintln!(
                        "{}: still running {STOP_TIMEOUT:?} after SIGTERM; killing it",
                        self.label
                    );
                    self.kill();
                    return Ok(());
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        self.child = None;
        Ok(())
    }

    /// Kills the process (SIGKILL, as in a crash) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Either fails only when the process is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of the server's stdout and stderr.
    pub(crate) fn log_tail(&self) -> String {
        let Ok(bytes) = std::fs::read(&self.log_path) else {
            return String::from("(no log)");
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .context("opening the server log")?;
        writeln!(
            log,
            "=== harness: starting {} {:?}",
            self.program.display(),
            self.args
        )
        .context("writing the server log")?;
        let stderr: File = log.try_clone().context("sharing the server log")?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        // InfluxDB reads `INFLUXDB_*` variables over its configuration file.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("INFLUXDB_") {
                command.env_remove(name);
            }
        }
        command
            .spawn()
            .with_context(|| format!("spawning {}", self.program.display()))
    }

    /// The exit status if the process has exited.
    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    /// Forgets a process that exited on its own.
    fn reap(&mut self) {
        if self.exit_status().is_some() {
            self.child = None;
        }
    }

    fn failure(&self, exited: bool, what: &str) -> StartFailure {
        StartFailure {
            exited,
            message: format!(
                "{} ({}) {what}; last lines of its log:\n{}",
                self.label,
                self.program.display(),
                self.log_tail()
            ),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_exits_is_reported_with_its_log() {
        let failure = ServerProcess::launch("failing", Path::new("/bin/sh"), |_dir| {
            let port = free_port()?;
            Ok(Spec {
                args: vec!["-c".into(), "echo cannot-bind-the-port >&2; exit 3".into()],
                ready: Readiness::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
                chosen: (),
            })
        })
        .await
        .expect_err("the server exits at once");
        let message = format!("{failure:#}");
        assert!(message.contains("exited"), "{message}");
        assert!(message.contains("cannot-bind-the-port"), "{message}");
    }
}
