//! Whether the database takes writes, as this store last saw it: a write that failed with a
//! retryable [`Fault`] starts an episode, the next write that commits ends it. Each episode is
//! logged twice, when it starts (with the cause) and when it ends (with how long and how many
//! writes failed), never once per failed write: a full disk under load fails hundreds of
//! group commits a second. Health reads it ([`crate::Store::write_fault`]).

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::error::Fault;
use crate::{Result, StorageError};

/// An episode of failed writes.
#[derive(Debug, Clone, Copy)]
struct Episode {
    fault: Fault,
    since: Instant,
    /// When the last write failed.
    last: Instant,
    failures: u64,
}

/// Writes are failing: why, and how long ago the last one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFault {
    /// The fault of the last failed write.
    pub fault: Fault,
    /// Time since the last failed write. A probe that writes a row may succeed while the
    /// service's larger writes still fail (a nearly full disk): health probes only once
    /// writes have stopped failing for a while.
    pub last_failed: std::time::Duration,
}

/// The store's write episodes (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    episode: Mutex<Option<Episode>>,
}

impl WriteHealth {
    /// Notes how a write (`what`: "append", "apply"...) ended, and passes its result on.
    pub(crate) fn record<T>(&self, what: &'static str, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => self.succeeded(),
            Err(e @ StorageError::Unavailable { fault, .. }) => self.failed(what, *fault, e),
            Err(_) => {}
        }
        result
    }

    /// The episode in progress, if writes are failing.
    pub(crate) fn fault(&self) -> Option<WriteFault> {
        self.lock().map(|e| WriteFault {
            fault: e.fault,
            last_failed: e.last.elapsed(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Episode>> {
        // Nothing below can panic while holding it; a poisoned lock still holds valid data.
        self.episode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn succeeded(&self) {
        let ended = self.lock().take();
        if let Some(e) = ended {
            tracing::info!(
                fault = %e.fault,
                failed_writes = e.failures,
                lasted_ms = u64::try_from(e.since.elapsed().as_millis()).unwrap_or(u64::MAX),
                "the database takes writes again"
            );
        }
    }

    fn failed(&self, what: &'static str, fault: Fault, error: &StorageError) {
        let mut episode = self.lock();
        match episode.as_mut() {
            Some(e) => {
                e.failures = e.failures.saturating_add(1);
                e.last = Instant::now();
                if e.fault != fault {
                    tracing::warn!(write = what, fault = %fault, error = %error, "{}; writes still fail", fault.describe());
                    e.fault = fault;
                } else {
                    tracing::debug!(write = what, error = %error, "write failed again");
                }
            }
            None => {
                tracing::error!(
                    write = what,
                    fault = %fault,
                    error = %error,
                    "{}: writes fail and clients are told UNAVAILABLE until it takes them again \
                     (logged once for the episode)",
                    fault.describe()
                );
                let now = Instant::now();
                *episode = Some(Episode {
                    fault,
                    since: now,
                    last: now,
                    failures: 1,
                });
            }
        }
    }
}
