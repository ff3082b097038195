//! Servers for the sink's tests: VictoriaMetrics and InfluxDB 1.x started as
//! child processes on free ports in temporary folders (killed on drop), and
//! a scripted HTTP server for answers a real database will not give on
//! demand.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::time::Instant;

const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";
const INFLUXD: &str = "/usr/bin/influxd";
const STARTUP: Duration = Duration::from_secs(30);

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether `bin` exists; without it, fails under `CI` and says loudly that
/// the test is skipped elsewhere.
fn available(bin: &str, test: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{bin} is missing (install the Debian package); CI must not skip {test}"
    );
    eprintln!("\n!!!!! SKIPPED {test}: {bin} is missing (install the Debian package) !!!!!\n");
    false
}

/// A database server running as a child process.
#[derive(Debug)]
pub struct Server {
    bin: &'static str,
    args: Vec<String>,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    health_path: &'static str,
}

impl Server {
    /// VictoriaMetrics (takes the InfluxDB v2 write API); `None` when skipped.
    pub async fn victoria_metrics(test: &str) -> Option<Server> {
        if !available(VICTORIA_METRICS, test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let args = vec![
            format!("-httpListenAddr=127.0.0.1:{port}"),
            format!("-storageDataPath={}", dir.path().join("data").display()),
            "-loggerLevel=ERROR".to_owned(),
        ];
        let mut s = Server {
            bin: VICTORIA_METRICS,
            args,
            port,
            dir,
            child: None,
            health_path: "/health",
        };
        s.start().await;
        Some(s)
    }

    /// InfluxDB 1.x (v1 write API, exact field types); `None` when skipped.
    pub async fn influxdb1(test: &str) -> Option<Server> {
        if !available(INFLUXD, test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let rpc = free_port();
        let d = dir.path();
        let config = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{meta}\"\n\
             [data]\n  dir = \"{data}\"\n  wal-dir = \"{wal}\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n",
            meta = d.join("meta").display(),
            data = d.join("data").display(),
            wal = d.join("wal").display(),
        );
        let conf = d.join("influxdb.conf");
        std::fs::write(&conf, config).expect("the config file");
        let args = vec![
            "run".to_owned(),
            "-config".to_owned(),
            conf.display().to_string(),
        ];
        let mut s = Server {
            bin: INFLUXD,
            args,
            port,
            dir,
            child: None,
            health_path: "/ping",
        };
        s.start().await;
        Some(s)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts it (again, on the same port and data) and waits until it answers.
    pub async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("a log file");
        let err = log.try_clone().expect("a log file");
        let child = Command::new(self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("the server starts");
        self.child = Some(child);
        let client = client();
        let url = format!("{}{}", self.url(), self.health_path);
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited with {status}:\n{}", self.bin, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {STARTUP:?}:\n{}",
                self.bin,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills it and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("the server stops");
        }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// A plain HTTP client for queries.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// A request the scripted server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request line, e.g. `POST /api/v2/write?... HTTP/1.1`.
    pub line: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, decompressed when gzip.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers: status and extra header lines, given the request index and body.
pub type Answer = dyn Fn(usize, &str) -> (u16, Vec<(&'static str, String)>) + Send + Sync;

/// A tiny HTTP/1.1 server answering from a script; returns its address and
/// the requests it received.
pub async fn scripted(answer: Arc<Answer>) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a listener");
    let addr = listener.local_addr().expect("an address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                while let Some(req) = read_request(&mut read).await {
                    let index = {
                        let mut seen = log.lock().expect("the log");
                        seen.push(req.clone());
                        seen.len() - 1
                    };
                    let (status, headers) = answer(index, &req.body);
                    let mut resp = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n");
                    for (k, v) in headers {
                        resp.push_str(k);
                        resp.push_str(": ");
                        resp.push_str(&v);
                        resp.push_str("\r\n");
                    }
                    resp.push_str("\r\n");
                    if write.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn read_request(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Request> {
    let mut line = String::new();
    if read.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let at = Instant::now();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        read.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut raw = vec![0; len];
    read.read_exact(&mut raw).await.ok()?;
    let gzip = headers
        .iter()
        .any(|(k, v)| k == "content-encoding" && v == "gzip");
    let body = if gzip {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text)
            .ok()?;
        text
    } else {
        String::from_utf8_lossy(&raw).into_owned()
    };
    Some(Request {
        line: line.trim_end().to_owned(),
        headers,
        body,
        at,
    })
}
