//! Readiness as the stages report it: `/readyz` answers from here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shared readiness flags. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    broker_connected: AtomicBool,
    sink_healthy: AtomicBool,
    sink_problem: Mutex<Option<String>>,
    broker_problem: Mutex<Option<String>>,
    /// Set while the write-ahead log holds the service back.
    wal_problem: Mutex<Option<String>>,
}

/// Why the service is not ready, if it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Ready to take and deliver messages.
    pub ready: bool,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Health {
    /// Records the broker connection state and, when down, why.
    pub fn set_broker(&self, connected: bool, problem: Option<String>) {
        self.inner
            .broker_connected
            .store(connected, Ordering::Relaxed);
        if let Ok(mut p) = self.inner.broker_problem.lock() {
            *p = problem;
        }
    }

    /// Records the sink state and, when unhealthy, why.
    pub fn set_sink(&self, healthy: bool, problem: Option<String>) {
        self.inner.sink_healthy.store(healthy, Ordering::Relaxed);
        if let Ok(mut p) = self.inner.sink_problem.lock() {
            *p = problem;
        }
    }

    /// Records why the write-ahead log holds the service back (`None`: it does not).
    pub fn set_wal(&self, problem: Option<String>) {
        if let Ok(mut p) = self.inner.wal_problem.lock() {
            *p = problem;
        }
    }

    /// Whether the broker is connected.
    pub fn broker_connected(&self) -> bool {
        self.inner.broker_connected.load(Ordering::Relaxed)
    }

    /// Whether the sink's last write succeeded.
    pub fn sink_healthy(&self) -> bool {
        self.inner.sink_healthy.load(Ordering::Relaxed)
    }

    /// The readiness verdict.
    pub fn readiness(&self) -> Readiness {
        let mut problems = Vec::new();
        if !self.broker_connected() {
            let why = self
                .inner
                .broker_problem
                .lock()
                .ok()
                .and_then(|p| p.clone());
            problems.push(format!(
                "broker not connected{}",
                why.map(|w| format!(": {w}")).unwrap_or_default()
            ));
        }
        if !self.sink_healthy() {
            let why = self.inner.sink_problem.lock().ok().and_then(|p| p.clone());
            problems.push(format!(
                "sink not healthy{}",
                why.map(|w| format!(": {w}")).unwrap_or_default()
            ));
        }
        if let Some(why) = self.inner.wal_problem.lock().ok().and_then(|p| p.clone()) {
            problems.push(why);
        }
        Readiness {
            ready: problems.is_empty(),
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_both_are_up() {
        let h = Health::default();
        assert!(!h.readiness().ready);
        h.set_broker(true, None);
        h.set_sink(false, Some("InfluxDB answered 503".into()));
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(r.problems, ["sink not healthy: InfluxDB answered 503"]);
        h.set_sink(true, None);
        assert!(h.readiness().ready);
        h.set_wal(Some("write-ahead log full".into()));
        assert_eq!(h.readiness().problems, ["write-ahead log full"]);
        h.set_wal(None);
        assert!(h.readiness().ready);
    }
}
