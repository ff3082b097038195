//! The stage loop against a scripted target, in paused time.

use std::collections::VecDeque;

use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use super::*;

/// A target that answers from a script and reports every write.
#[derive(Debug)]
pub struct Script {
    /// Answers to give, in order; past the end, `Written`.
    answers: VecDeque<Outcome>,
    /// Lines holding this text are refused with 400.
    bad: Option<&'static str>,
    writes: mpsc::Sender<(Instant, Bytes, Outcome)>,
}

impl Script {
    pub async fn write(&mut self, body: Bytes) -> Outcome {
        let outcome = match self.answers.pop_front() {
            Some(o) => o,
            None => match self.bad {
                Some(bad) if String::from_utf8_lossy(&body).contains(bad) => Outcome::Refused {
                    status: 400,
                    error: "unable to parse".into(),
                },
                _ => Outcome::Written,
            },
        };
        // The test may have stopped listening; the stage goes on.
        let _ = self
            .writes
            .send((Instant::now(), body, outcome.clone()))
            .await;
        outcome
    }
}

struct Harness {
    tx: mpsc::Sender<LineBatch>,
    writes: mpsc::Receiver<(Instant, Bytes, Outcome)>,
    letters: mpsc::Receiver<DeadLetter>,
    metrics: Metrics,
    registry: Registry,
    health: Health,
    task: tokio::task::JoinHandle<Result<(), SinkError>>,
}

fn batch_cfg(max_lines: usize, max_bytes: usize, max_age_ms: u64) -> BatchConfig {
    BatchConfig {
        max_lines,
        max_bytes,
        max_age_ms,
        gzip: false,
    }
}

fn start(
    batch: BatchConfig,
    answers: Vec<Outcome>,
    bad: Option<&'static str>,
    capacity: usize,
) -> Harness {
    let (tx, rx) = mpsc::channel(capacity);
    let (writes_tx, writes) = mpsc::channel(1024);
    let (letters_tx, letters) = mpsc::channel(1024);
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let health = Health::default();
    let target = Target::Script(Script {
        answers: answers.into(),
        bad,
        writes: writes_tx,
    });
    let retry = RetryConfig {
        initial_ms: 100,
        max_ms: 5000,
    };
    let stage = Stage::new(
        target,
        &retry,
        rx,
        letters_tx,
        metrics.clone(),
        health.clone(),
    );
    let task = tokio::spawn(async move { stage.run(&batch).await });
    Harness {
        tx,
        writes,
        letters,
        metrics,
        registry,
        health,
        task,
    }
}

fn lines(prefix: &str, n: usize) -> LineBatch {
    let mut buf = Vec::new();
    for i in 0..n {
        buf.extend_from_slice(format!("{prefix} f={i} {i}\n").as_bytes());
    }
    LineBatch {
        buf,
        raw: n,
        windows: 0,
        checkpoint: None,
    }
}

impl Harness {
    async fn send(&self, batch: LineBatch) {
        self.tx.send(batch).await.expect("the stage reads");
    }

    /// Sends and waits until the stage has taken the batch off the channel.
    async fn send_taken(&self, batch: LineBatch) {
        self.send(batch).await;
        while self.tx.capacity() < self.tx.max_capacity() {
            tokio::task::yield_now().await;
        }
    }

    async fn next_write(&mut self) -> (Instant, Bytes, Outcome) {
        self.writes.recv().await.expect("a write")
    }

    async fn finish(
        self,
    ) -> (
        Vec<(Instant, Bytes, Outcome)>,
        Vec<DeadLetter>,
        Metrics,
        Registry,
    ) {
        let Harness {
            tx,
            mut writes,
            mut letters,
            metrics,
            registry,
            task,
            ..
        } = self;
        drop(tx);
        task.await
            .expect("the stage ends")
            .expect("the stage succeeds");
        let mut all = Vec::new();
        while let Ok(w) = writes.try_recv() {
            all.push(w);
        }
        let mut dead = Vec::new();
        while let Ok(d) = letters.try_recv() {
            dead.push(d);
        }
        (all, dead, metrics, registry)
    }
}

fn retry(cause: &'static str) -> Outcome {
    Outcome::Retry(Failure::new(cause, "down"))
}

#[tokio::test(start_paused = true)]
async fn writes_when_max_lines_is_reached() {
    let mut h = start(batch_cfg(4, 1 << 20, 60_000), vec![], None, 8);
    let t0 = Instant::now();
    h.send(lines("a", 2)).await;
    h.send(lines("b", 2)).await;
    let (at, body, _) = h.next_write().await;
    assert_eq!(at, t0, "no waiting for the age limit");
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 4);
    let (writes, ..) = h.finish().await;
    assert!(writes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn writes_when_max_bytes_is_reached() {
    let mut h = start(batch_cfg(1000, 30, 60_000), vec![], None, 8);
    let t0 = Instant::now();
    h.send(lines("a", 2)).await; // 16 bytes
    h.send(lines("b", 2)).await; // 32 bytes
    let (at, body, _) = h.next_write().await;
    assert_eq!(at, t0);
    assert_eq!(
        body, "a f=0 0\na f=1 1\nb f=0 0\n",
        "cut at the last line that fits"
    );
    let (writes, ..) = h.finish().await;
    assert_eq!(writes.len(), 1, "the rest at shutdown");
    assert_eq!(writes[0].1, "b f=1 1\n");
}

#[tokio::test(start_paused = true)]
async fn writes_when_the_oldest_line_is_max_age_old() {
    let mut h = start(batch_cfg(1000, 1 << 20, 750), vec![], None, 8);
    let t0 = Instant::now();
    h.send_taken(lines("a", 1)).await;
    tokio::time::advance(Duration::from_millis(500)).await;
    h.send_taken(lines("b", 1)).await;
    let (at, body, _) = h.next_write().await;
    assert_eq!(at - t0, Duration::from_millis(750));
    assert_eq!(body, "a f=0 0\nb f=0 0\n");
    h.finish().await;
}

#[tokio::test(start_paused = true)]
async fn everything_left_is_written_when_the_input_closes() {
    let h = start(batch_cfg(3, 1 << 20, 60_000), vec![], None, 8);
    h.send(lines("a", 2)).await;
    let (writes, _, metrics, _) = h.finish().await;
    assert_eq!(writes.len(), 1);
    assert_eq!(metrics.written(PointKind::raw).get(), 2);
}

#[tokio::test(start_paused = true)]
async fn retries_until_written_and_logs_health() {
    let answers = vec![
        retry("status_5xx"),
        retry("connection"),
        retry("connection"),
    ];
    let mut h = start(batch_cfg(2, 1 << 20, 60_000), answers, None, 8);
    let t0 = Instant::now();
    h.send(lines("a", 2)).await;
    let (_, _, first) = h.next_write().await;
    assert!(matches!(first, Outcome::Retry(_)));
    h.next_write().await;
    assert!(!h.health.sink_healthy(), "unhealthy while failing");
    h.next_write().await;
    let (at, body, last) = h.next_write().await;
    assert_eq!(last, Outcome::Written);
    assert_eq!(body, "a f=0 0\na f=1 1\n", "the same body again");
    let waited = at - t0;
    assert!(
        waited >= Duration::from_millis(100 + 100 + 100),
        "{waited:?}"
    );
    assert!(
        waited <= Duration::from_millis(100 + 200 + 400),
        "{waited:?}"
    );
    assert!(h.health.sink_healthy(), "healthy again");
    assert_eq!(h.metrics.retry("status_5xx").get(), 1);
    assert_eq!(h.metrics.retry("connection").get(), 2);
    let (_, _, metrics, registry) = h.finish().await;
    assert_eq!(metrics.written(PointKind::raw).get(), 2);
    let text = crate::metrics::render(&registry);
    assert!(text.contains("ingest_sink_healthy 1"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    let mut after = Failure::new("status_429", "busy");
    after.after = Some(Duration::from_secs(3));
    let mut long = Failure::new("status_429", "busy");
    long.after = Some(Duration::from_secs(3600));
    let answers = vec![Outcome::Retry(after), Outcome::Retry(long)];
    let mut h = start(batch_cfg(1, 1 << 20, 60_000), answers, None, 8);
    h.send(lines("a", 1)).await;
    let (t1, ..) = h.next_write().await;
    let (t2, ..) = h.next_write().await;
    let (t3, ..) = h.next_write().await;
    assert_eq!(t2 - t1, Duration::from_secs(3));
    assert_eq!(t3 - t2, Duration::from_secs(5), "capped at retry.max_ms");
    h.finish().await;
}

#[tokio::test(start_paused = true)]
async fn misconfiguration_waits_the_longest_delay() {
    let mut f = Failure::new("misconfigured", "401");
    f.misconfigured = Some("sink.influxdb.token");
    let mut h = start(
        batch_cfg(1, 1 << 20, 60_000),
        vec![Outcome::Retry(f)],
        None,
        8,
    );
    h.send(lines("a", 1)).await;
    let (t1, ..) = h.next_write().await;
    let (t2, _, o) = h.next_write().await;
    assert_eq!(t2 - t1, Duration::from_secs(5));
    assert_eq!(o, Outcome::Written);
    h.finish().await;
}

#[tokio::test(start_paused = true)]
async fn refused_lines_are_isolated_and_dead_lettered() {
    let h = start(batch_cfg(8, 1 << 20, 60_000), vec![], Some("bad"), 8);
    let mut b = lines("good", 3);
    b.buf.extend_from_slice(b"bad f=\"x\" 9\n");
    b.buf.extend_from_slice(b"w,kind=window f=1 1\n");
    b.raw = 4;
    b.windows = 1;
    h.send(b).await;
    let (writes, dead, metrics, _) = h.finish().await;
    let written: Vec<Bytes> = writes
        .into_iter()
        .filter(|w| w.2 == Outcome::Written)
        .map(|w| w.1)
        .collect();
    let all: Vec<u8> = written.concat();
    assert_eq!(
        String::from_utf8_lossy(&all),
        "good f=0 0\ngood f=1 1\ngood f=2 2\nw,kind=window f=1 1\n"
    );
    assert_eq!(
        dead,
        vec![DeadLetter::Line {
            line: "bad f=\"x\" 9".into(),
            status: 400,
            error: "unable to parse".into(),
        }]
    );
    assert_eq!(metrics.lines_rejected.get(), 1);
    assert_eq!(metrics.written(PointKind::raw).get(), 3);
    assert_eq!(metrics.written(PointKind::window).get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_database_stops_the_reading() {
    // Every write fails: the stage holds one full buffer and reads no more.
    let answers = std::iter::repeat_with(|| retry("connection"))
        .take(10_000)
        .collect();
    let mut h = start(batch_cfg(2, 1 << 20, 60_000), answers, None, 2);
    let mut accepted = 0;
    for _ in 0..100 {
        if h.tx.try_send(lines("a", 1)).is_err() {
            // Let the stage run a while (paused time moves on by itself).
            tokio::time::sleep(Duration::from_secs(60)).await;
            if h.tx.try_send(lines("a", 1)).is_err() {
                break;
            }
        }
        accepted += 1;
        while h.writes.try_recv().is_ok() {}
        tokio::task::yield_now().await;
    }
    assert!(
        accepted <= 2 + 2,
        "{accepted} batches taken while the database is down"
    );
    assert!(!h.health.sink_healthy());
    assert_eq!(h.metrics.queue("sink").get(), 2, "the channel is full");
    h.task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_comes_back_only_once_its_lines_are_written() {
    let (tx, rx) = mpsc::channel(8);
    let (writes_tx, mut writes) = mpsc::channel(1024);
    let (letters_tx, _letters) = mpsc::channel(1024);
    let (cp_tx, mut checkpoints) = mpsc::unbounded_channel();
    let metrics = Metrics::new(&mut Registry::default());
    let target = Target::Script(Script {
        answers: vec![retry("status_5xx"), retry("connection")].into(),
        bad: None,
        writes: writes_tx,
    });
    let retry_cfg = RetryConfig {
        initial_ms: 100,
        max_ms: 5000,
    };
    let mut stage = Stage::new(
        target,
        &retry_cfg,
        rx,
        letters_tx,
        metrics,
        Health::default(),
    );
    stage.checkpoints = Some(cp_tx);
    let batch = batch_cfg(3, 1 << 20, 60_000);
    let task = tokio::spawn(async move { stage.run(&batch).await });

    let mut first = lines("a", 2);
    first.checkpoint = Some(Checkpoint::new(10, b"after 10".to_vec()));
    tx.send(first).await.expect("sent");
    let mut second = lines("b", 2);
    second.checkpoint = Some(Checkpoint::new(20, b"after 20".to_vec()));
    tx.send(second).await.expect("sent");

    // Two failed attempts at the first chunk: no checkpoint yet.
    for _ in 0..2 {
        let (_, _, outcome) = writes.recv().await.expect("a write");
        assert!(matches!(outcome, Outcome::Retry(_)));
        assert!(checkpoints.try_recv().is_err(), "nothing is written yet");
    }
    let (_, body, outcome) = writes.recv().await.expect("a write");
    assert_eq!(outcome, Outcome::Written);
    assert_eq!(body, "a f=0 0\na f=1 1\nb f=0 0\n");
    let cp = checkpoints
        .recv()
        .await
        .expect("the first batch is written whole");
    assert_eq!(cp.next, 10);
    assert!(checkpoints.try_recv().is_err(), "the second batch is not");

    drop(tx);
    task.await.expect("ends").expect("succeeds");
    let cp = checkpoints.recv().await.expect("the rest at shutdown");
    assert_eq!((cp.next, cp.windows), (20, b"after 20".to_vec()));
}
