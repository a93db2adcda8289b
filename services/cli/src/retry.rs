//! Retrying what the services say to retry later: `UNAVAILABLE` (a storage fault such as a
//! full disk, a database or service restarting, a lost connection) and `RESOURCE_EXHAUSTED`
//! (load shed, a site over its rate, a full writer queue), and a connection that broke in the
//! middle of a call (see [`lost_connection`]). `push` and `loadgen` wait and send
//! again what was not answered, with exponential backoff (100 ms doubling to 5 s, with
//! jitter), and give up with a clear error once the failures have lasted [`GIVE_UP_AFTER`]
//! without an answer in between. Resending is safe: a transaction whose first attempt was in
//! fact stored comes back DUPLICATE.

use std::time::{Duration, Instant};

use tonic::{Code, Status};

/// The first wait.
const FIRST: Duration = Duration::from_millis(100);
/// The longest wait.
const LONGEST: Duration = Duration::from_secs(5);
/// How long failures may last, with no answer in between, before the command gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Whether the status says to try again later.
#[must_use]
pub fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted) || lost_connection(status)
}

/// Whether the client's own transport made this status, not the server: the HTTP/2 connection
/// broke in the middle of a call, so nothing more was answered. tonic calls that UNKNOWN ("h2
/// protocol error: error reading a body from connection") when the service dies behind a proxy
/// that closes the client's side, as Docker's published ports do for a SIGKILLed ingest. A
/// status the server sent carries no source error.
fn lost_connection(status: &Status) -> bool {
    status.code() == Code::Unknown && std::error::Error::source(status).is_some()
}

/// Consecutive failures of one stream or call, and the waits between its attempts.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Failures since the last answer.
    failures: u32,
    /// When the first of them happened.
    since: Option<Instant>,
}

impl Backoff {
    /// An answer came: the next failure starts a new episode.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.since = None;
    }

    /// Failures since the last answer.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failure and returns how long to wait before the next attempt, or `None` when
    /// failures have lasted [`GIVE_UP_AFTER`].
    pub fn failed(&mut self) -> Option<Duration> {
        let since = *self.since.get_or_insert_with(Instant::now);
        self.failures = self.failures.saturating_add(1);
        if since.elapsed() >= GIVE_UP_AFTER {
            return None;
        }
        let doubled = FIRST.saturating_mul(1 << self.failures.saturating_sub(1).min(16));
        let wait = doubled.min(LONGEST);
        // Up to a quarter more, so many streams that failed together do not return together.
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos(),
        ) % (u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) / 4).max(1);
        Some(wait + Duration::from_millis(jitter))
    }

    /// Waits after a retryable `status` of `what` on `endpoint`, or returns the error to
    /// give up with (also for a status that is not retryable).
    ///
    /// # Errors
    /// When the status is not retryable, or failures have lasted [`GIVE_UP_AFTER`].
    pub async fn wait(
        &mut self,
        endpoint: &str,
        what: &str,
        status: &Status,
    ) -> anyhow::Result<()> {
        if !retryable(status) {
            return Err(crate::client::explain(endpoint, what, status));
        }
        let Some(wait) = self.failed() else {
            return Err(
                crate::client::explain(endpoint, what, status).context(format!(
                    "{what} still failed after {} attempts over {} s; gave up (the services retry \
                 UNAVAILABLE and RESOURCE_EXHAUSTED for {} s; what was answered is counted, run \
                 the command again to send the rest: what was stored comes back DUPLICATE)",
                    self.failures,
                    self.since.map_or(0, |s| s.elapsed().as_secs()),
                    GIVE_UP_AFTER.as_secs()
                )),
            );
        };
        if self.failures == 1 {
            eprintln!(
                "{endpoint}: {what}: {} ({}); retrying with backoff for up to {} s",
                status.code(),
                status.message(),
                GIVE_UP_AFTER.as_secs()
            );
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_broke_mid_call_is_retried_an_unknown_the_server_sent_is_not() {
        let broken = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "error reading a body from connection",
        )));
        assert_eq!(broken.code(), Code::Unknown);
        assert!(retryable(&broken), "{broken:?}");
        assert!(!retryable(&Status::unknown("the server failed")));
        assert!(!retryable(&Status::invalid_argument("bad")));
    }

    #[test]
    fn waits_double_up_to_five_seconds_and_only_retryable_codes_retry() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..8)
            .map(|_| b.failed().expect("within a minute"))
            .collect();
        assert!(waits[0] >= FIRST && waits[0] < FIRST * 2, "{waits:?}");
        assert!(waits[1] >= FIRST * 2, "{waits:?}");
        assert!(
            waits[7] >= LONGEST && waits[7] <= LONGEST + LONGEST / 4,
            "{waits:?}"
        );
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(retryable(&Status::unavailable("disk full")));
        assert!(retryable(&Status::resource_exhausted("busy")));
        assert!(!retryable(&Status::internal("bug")));
        assert!(!retryable(&Status::invalid_argument("bad")));
    }
}
