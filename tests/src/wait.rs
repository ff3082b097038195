//! A bounded poll: the way tests wait for something to become true.

use std::time::Duration;

use tokio::time::Instant;

/// The first pause between two polls; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Calls `probe` until it returns `Ok`, and returns that value; fails once
/// `timeout` has passed, with the last error `probe` returned.
///
/// `Err` from the probe means "not yet", and its message should say what was
/// observed, so that a timeout explains itself. A probe call that outlives the
/// deadline is cut short.
///
/// ```no_run
/// # async fn example(vm: &harness::VictoriaMetrics) -> anyhow::Result<()> {
/// use std::time::Duration;
/// let series = harness::wait_until("two series", Duration::from_secs(10), async || {
///     let series = vm.export().await?;
///     anyhow::ensure!(series.len() == 2, "saw {series:?}");
///     Ok(series)
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    let mut polls = 0_u32;
    loop {
        polls += 1;
        let last = match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(not_yet)) => format!("{not_yet:#}"),
            Err(_) => String::from("the last poll was still running at the deadline"),
        };
        let now = Instant::now();
        if now >= deadline {
            anyhow::bail!("timed out after {timeout:?} ({polls} polls) waiting for {what}; last observed: {last}");
        }
        tokio::time::sleep_until((now + pause).min(deadline)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ready_value() {
        let mut calls = 0;
        let value = wait_until("the third call", Duration::from_secs(5), async || {
            calls += 1;
            anyhow::ensure!(calls >= 3, "call {calls}");
            Ok(calls)
        })
        .await
        .expect("ready on the third call");
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_timeout_reports_the_last_observation() {
        let err = wait_until(
            "never",
            Duration::from_millis(100),
            async || -> anyhow::Result<()> { anyhow::bail!("still nothing") },
        )
        .await
        .expect_err("never ready");
        let message = format!("{err:#}");
        assert!(
            message.contains("never") && message.contains("still nothing"),
            "{message}"
        );
    }
}
