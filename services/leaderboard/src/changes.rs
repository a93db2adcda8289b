//! Organizer changes in the log, for people to read: the first change of a kind is logged at
//! once; more of the same kind, each within a second of the last (a load generator registering
//! or disabling its 130 sites, revoking its keys), become one line when the burst has been quiet
//! for a second: "and 129 more: site disabled ... (lg-002 ... lg-130)". Every change is also
//! logged on its own at debug level.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A burst ends when no change of its kind came for this long.
const QUIET: Duration = Duration::from_secs(1);

/// Changes of one kind after the first of a burst.
#[derive(Debug)]
struct Burst {
    more: u64,
    first: String,
    last: String,
    started: Instant,
    last_at: Instant,
}

/// The organizer's changes, summed per burst (see the module comment).
#[derive(Debug, Default)]
pub struct ChangeLog {
    bursts: Mutex<HashMap<&'static str, Burst>>,
}

impl ChangeLog {
    /// A log whose bursts are summed by a task of their own, which ends with the log.
    #[must_use]
    pub fn start() -> Arc<Self> {
        let log = Arc::new(Self::default());
        let weak: Weak<Self> = Arc::downgrade(&log);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(QUIET).await;
                let Some(log) = weak.upgrade() else { break };
                log.flush(Instant::now(), false);
            }
        });
        log
    }

    /// One change of `kind` ("site disabled") on `subject` (its id).
    pub fn record(&self, kind: &'static str, subject: &str) {
        tracing::debug!(change = kind, subject, "organizer change");
        let now = Instant::now();
        let mut bursts = self.bursts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(burst) = bursts.get_mut(kind)
            && now.duration_since(burst.last_at) < QUIET
        {
            if burst.more == 0 {
                burst.first = subject.to_owned();
            }
            burst.more += 1;
            subject.clone_into(&mut burst.last);
            burst.last_at = now;
            return;
        }
        if let Some(ended) = bursts.remove(kind) {
            log_burst(kind, &ended);
        }
        tracing::info!(change = kind, subject, "{kind}: {subject}");
        bursts.insert(
            kind,
            Burst {
                more: 0,
                first: String::new(),
                last: subject.to_owned(),
                started: now,
                last_at: now,
            },
        );
    }

    /// Logs the bursts quiet since `now` less a second (every one with `all`).
    fn flush(&self, now: Instant, all: bool) {
        let mut bursts = self.bursts.lock().unwrap_or_else(PoisonError::into_inner);
        bursts.retain(|kind, burst| {
            let ended = all || now.duration_since(burst.last_at) >= QUIET;
            if ended {
                log_burst(kind, burst);
            }
            !ended
        });
    }

    /// Changes counted since the first of the burst of `kind` (for tests).
    #[cfg(test)]
    fn pending(&self, kind: &str) -> Option<u64> {
        self.bursts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kind)
            .map(|b| b.more)
    }
}

impl Drop for ChangeLog {
    fn drop(&mut self) {
        self.flush(Instant::now(), true);
    }
}

/// The summary line of a burst's changes after its first (nothing when there were none).
fn log_burst(kind: &str, burst: &Burst) {
    if burst.more == 0 {
        return;
    }
    let took = burst.last_at.duration_since(burst.started).as_secs_f64();
    let range = if burst.more == 1 {
        burst.last.clone()
    } else {
        format!("{} ... {}", burst.first, burst.last)
    };
    tracing::info!(
        change = kind,
        more = burst.more,
        "and {} more within {took:.1} s: {kind} ({range})",
        burst.more
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_one_kind_is_counted_not_logged_line_by_line() {
        let log = ChangeLog::default();
        for i in 1..=130 {
            log.record("site disabled", &format!("lg-{i:03}"));
        }
        log.record("API key revoked", "key_1");
        assert_eq!(log.pending("site disabled"), Some(129));
        assert_eq!(log.pending("API key revoked"), Some(0));
        // Not yet quiet: kept.
        log.flush(Instant::now(), false);
        assert_eq!(log.pending("site disabled"), Some(129));
        // Quiet for a second: logged and gone.
        log.flush(Instant::now() + QUIET, false);
        assert_eq!(log.pending("site disabled"), None);
    }
}
