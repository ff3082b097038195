//! The outage log: one line when writes start failing, one when they
//! succeed again (the delays between retries are [`crate::backoff`]'s).

use std::time::Duration;

use tokio::time::Instant;

/// Tracks an outage so that it is logged once when it starts and once when
/// it ends, not on every retry.
#[derive(Debug, Default)]
pub struct Outage {
    current: Option<Current>,
}

#[derive(Debug)]
struct Current {
    since: Instant,
    cause: &'static str,
    retries: u64,
}

/// What [`Outage::recovered`] reports about an outage that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// How long writes failed.
    pub lasted: Duration,
    /// Retries during the outage.
    pub retries: u64,
}

impl Outage {
    /// Records a failed attempt that will be retried. Returns true when it
    /// starts an outage or changes its cause: the caller logs then only.
    pub fn failed(&mut self, cause: &'static str) -> bool {
        if let Some(c) = &mut self.current {
            c.retries += 1;
            let changed = c.cause != cause;
            c.cause = cause;
            changed
        } else {
            self.current = Some(Current {
                since: Instant::now(),
                cause,
                retries: 1,
            });
            true
        }
    }

    /// Records a success; returns the outage it ended, if any.
    pub fn recovered(&mut self) -> Option<Ended> {
        self.current.take().map(|c| Ended {
            lasted: c.since.elapsed(),
            retries: c.retries,
        })
    }

    /// Whether writes are failing now.
    pub fn is_ongoing(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_reported_once_at_each_end() {
        let mut o = Outage::default();
        assert!(o.recovered().is_none());
        assert!(o.failed("connection"));
        assert!(!o.failed("connection"));
        assert!(!o.failed("connection"));
        assert!(o.failed("status_5xx"), "a new cause is worth a line");
        assert!(o.is_ongoing());
        let ended = o.recovered().expect("an outage ended");
        assert_eq!(ended.retries, 4);
        assert!(!o.is_ongoing());
        assert!(o.recovered().is_none());
    }
}
