//! The fold loop. As a standby it tries to take the lease; once active it loads the stored
//! totals, then repeatedly reads the ledger after the applied position, folds the rows into the
//! totals with checked arithmetic, and commits the changed totals with the new applied position
//! in one fenced transaction. Any storage failure drops back to loading from the database, so
//! the in-memory totals never drift from what is committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use saleboard_domain::UnixNanos;
use saleboard_domain::late::{LateBook, LateWindow};
use saleboard_domain::totals::{Changes, TotalsBook, TotalsOverflow};
use saleboard_storage::{StorageError, Store};
use tokio::sync::watch;

use crate::AggregatorConfig;

/// Why the aggregator stopped on its own: never a wrong figure, always a reason.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A total would overflow.
    #[error(transparent)]
    Overflow(#[from] TotalsOverflow),
    /// A stored row breaks the schema's rules (tampering or a bug): folding past it would
    /// store a wrong figure, so the aggregator stops and says which table.
    #[error("cannot fold the ledger: {0}; the aggregator stops rather than skip or guess")]
    Corrupt(StorageError),
    /// The ledger has a hole where a position should be: never expected, so stop and say so.
    #[error("the ledger skips from position {applied} to {found}; refusing to fold past a gap")]
    Gap {
        /// Last applied position.
        applied: u64,
        /// Position read next.
        found: u64,
    },
}

/// What this process's aggregator is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalStatus {
    /// Holds the lease and applies rows.
    pub active: bool,
    /// Applied position as last committed by this process.
    pub applied: u64,
}

/// Why a period as the active aggregator ended without a reason to stop the process.
#[derive(Debug, thiserror::Error)]
enum Lost {
    /// Another aggregator holds the lease now.
    #[error("the lease was taken over")]
    TakenOver,
    /// Storage failed or fenced the apply: reload and try again.
    #[error(transparent)]
    Storage(StorageError),
    /// The task writing deferred breakdowns ended without an answer (it panicked, or the
    /// runtime is shutting down): reload and try again.
    #[error("the breakdown write stopped: {0}")]
    Flush(String),
}

/// How a period as the active aggregator ended.
enum LeadEnd {
    /// Asked to stop.
    Stopped,
    /// Lease lost, fenced, or storage failed: back to standby (reloading state).
    Lost(Lost),
    /// A reason to stop the process.
    Fatal(EngineError),
}

/// A batch of at least this many rows means a busy ledger: the breakdown figures may wait
/// (see `--aggregator-breakdown-ms`).
const BUSY_ROWS: usize = 1_000;

/// How often the events' ends are read again for the late figures (an organizer may move an
/// end; see `saleboard_domain::late`).
const WINDOWS_EVERY: Duration = Duration::from_secs(1);

/// How long a lead must hold before its next loss is logged again as a new episode.
const EPISODE_GAP: std::time::Duration = std::time::Duration::from_secs(30);

impl From<StorageError> for LeadEnd {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Corrupt { .. } => Self::Fatal(EngineError::Corrupt(e)),
            other => Self::Lost(Lost::Storage(other)),
        }
    }
}

/// The aggregator engine.
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    config: AggregatorConfig,
    instance_id: String,
    status: watch::Sender<LocalStatus>,
    metrics: Metrics,
}

/// The aggregator's instruments (no-ops unless telemetry exports them).
#[derive(Debug)]
struct Metrics {
    applied: opentelemetry::metrics::Counter<u64>,
    /// Recorded here as 0 when caught up, and by the monitor from its reads while active.
    lag: opentelemetry::metrics::Gauge<u64>,
}

impl Metrics {
    fn new() -> Self {
        let meter = saleboard_runtime::telemetry::meter();
        Self {
            applied: meter
                .u64_counter("saleboard.aggregator.applied")
                .with_unit("{row}")
                .with_description("Ledger rows folded into the totals")
                .build(),
            lag: meter
                .u64_gauge("saleboard.aggregator.lag")
                .with_unit("{row}")
                .with_description("Ledger rows committed but not yet folded into the totals")
                .build(),
        }
    }
}

impl Engine {
    /// An engine over `store`, identified by `instance_id` in the lease.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, config: AggregatorConfig, instance_id: String) -> Self {
        Self {
            store,
            config,
            instance_id,
            status: watch::Sender::new(LocalStatus::default()),
            metrics: Metrics::new(),
        }
    }

    /// This process's status, updated as it goes.
    #[must_use]
    pub fn status(&self) -> watch::Receiver<LocalStatus> {
        self.status.subscribe()
    }

    /// The lag gauge, for the monitor to record what it reads.
    #[must_use]
    pub(crate) fn lag_gauge(&self) -> opentelemetry::metrics::Gauge<u64> {
        self.metrics.lag.clone()
    }

    /// This process's id in the lease.
    #[must_use]
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    fn lease_until(&self) -> (UnixNanos, UnixNanos) {
        let now = UnixNanos::now();
        let ms = i64::try_from(self.config.lease_ms).unwrap_or(i64::MAX);
        (
            now,
            UnixNanos(now.0.saturating_add(ms.saturating_mul(1_000_000))),
        )
    }

    /// Runs until `stop` turns true (then gives the lease up) or a fatal error.
    ///
    /// # Errors
    /// On overflow of a total or a gap in the ledger.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), EngineError> {
        let standby_wait = self.config.lease() / 5;
        // While storage keeps failing (a full disk, a lost database), the lead ends and starts
        // again every few milliseconds: its loss is logged when an episode starts, then only
        // at debug until the lead has held for EPISODE_GAP.
        let mut last_lost: Option<std::time::Instant> = None;
        // Whether the lease could not be read (logged once until it can).
        let mut lease_unreadable = false;
        loop {
            if *stop.borrow() {
                break;
            }
            let (now, until) = self.lease_until();
            let lease = self.store.try_lease(&self.instance_id, now, until).await;
            if lease.is_ok() {
                lease_unreadable = false;
            }
            match lease {
                Ok(true) => {
                    let quiet = last_lost.is_some_and(|t| t.elapsed() < EPISODE_GAP);
                    if quiet {
                        tracing::debug!(instance = %self.instance_id, "aggregator active again");
                    } else {
                        tracing::info!(instance = %self.instance_id, "aggregator active");
                    }
                    let led = std::time::Instant::now();
                    let end = self.lead(&mut stop).await;
                    self.status.send_modify(|s| s.active = false);
                    match end {
                        LeadEnd::Stopped => break,
                        LeadEnd::Lost(why) => {
                            if quiet && led.elapsed() < EPISODE_GAP {
                                tracing::debug!(reason = %why, "aggregator no longer active; reloading");
                            } else {
                                tracing::warn!(reason = %why, "aggregator no longer active; reloading (logged once while it keeps failing)");
                            }
                            last_lost = Some(std::time::Instant::now());
                        }
                        LeadEnd::Fatal(e) => {
                            tracing::error!(error = %e, "aggregator stopping");
                            drop(self.store.release_lease(&self.instance_id).await);
                            return Err(e);
                        }
                    }
                }
                Ok(false) => tracing::debug!("another aggregator holds the lease; standing by"),
                Err(e) => {
                    if std::mem::replace(&mut lease_unreadable, true) {
                        tracing::debug!(error = %e, "cannot reach the database for the lease");
                    } else {
                        tracing::warn!(error = %e, "cannot reach the database for the lease (logged once until it can)");
                    }
                }
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(standby_wait) => {}
            }
        }
        if let Err(e) = self.store.release_lease(&self.instance_id).await {
            tracing::warn!(error = %e, "could not release the aggregator lease; it expires by itself");
        }
        tracing::info!("aggregator stopped");
        Ok(())
    }

    /// Brings the breakdown figures to `applied` (every row is in the headline figures): after
    /// the breakdown write under way (`flushing`), the ones still in `book`, with the state
    /// row's both watermarks in one transaction.
    async fn catch_up_breakdowns(
        &self,
        book: &mut TotalsBook,
        late: &mut LateBook,
        applied: u64,
        flushing: Option<Flush>,
    ) -> Result<(), LeadEnd> {
        finish(flushing).await?;
        let mut changes = book.take_breakdown_changes();
        changes.late = late.take_changes();
        self.store
            .apply_totals(applied, applied, &changes, UnixNanos::now())
            .await?;
        Ok(())
    }

    /// Gives `late` every event's end as stored now, and returns the events whose late figures
    /// must be counted again from the ledger for it (see [`LateBook::needs_recount`]);
    /// `has_rows`: whether the ledger may hold rows of an event the book has no window for.
    async fn sync_windows(
        &self,
        late: &mut LateBook,
        has_rows: bool,
    ) -> Result<Vec<(String, UnixNanos)>, LeadEnd> {
        let events = self.store.events().await?;
        let mut recount = Vec::new();
        for event in events.iter() {
            if late.needs_recount(&event.event_id, event.ends_at, has_rows) {
                // Nothing of it folded before the recount replaces its figures (the catch-up
                // at start would fold rows into figures that may not hold what they take away).
                late.hold_for_recount(&event.event_id);
                recount.push((event.event_id.clone(), event.ends_at));
            } else {
                late.set_end(&event.event_id, event.ends_at);
            }
        }
        Ok(recount)
    }

    /// Makes sure `late` knows the end of every event of `rows` before they are folded: an
    /// event created since the ends were read is read now (its rows were committed after it).
    async fn know_ends(
        &self,
        late: &mut LateBook,
        rows: &[saleboard_storage::LedgerRow],
    ) -> Result<(), LeadEnd> {
        if rows.iter().all(|r| late.knows_end(&r.event_id)) {
            return Ok(());
        }
        for event in self.store.events().await?.iter() {
            if late.window(&event.event_id).is_none() {
                late.set_end(&event.event_id, event.ends_at);
            }
        }
        Ok(())
    }

    /// Counts the late figures of `events` (id, end) again from every ledger row up to
    /// `applied` (a scan of the ledger: only when an end moved across rows already folded, or
    /// once for a database from before the late figures), and puts them in `late`.
    async fn recount_late(
        &self,
        late: &mut LateBook,
        events: &[(String, UnixNanos)],
        applied: u64,
    ) -> Result<(), LeadEnd> {
        let started = Instant::now();
        let mut fresh = LateBook::default();
        for (event, ends_at) in events {
            fresh.set_end(event, *ends_at);
        }
        // A long scan keeps the lease: renewed as the lead's loop renews it.
        let renew_every = self.config.lease() / 5;
        let mut renewed = Instant::now();
        let mut after = 0;
        while after < applied {
            if renewed.elapsed() >= renew_every {
                let (now, until) = self.lease_until();
                if !self.store.try_lease(&self.instance_id, now, until).await? {
                    return Err(LeadEnd::Lost(Lost::TakenOver));
                }
                renewed = Instant::now();
            }
            let rows = self
                .store
                .read_ledger(after, self.config.batch_rows)
                .await?;
            let upto = rows.partition_point(|r| r.position <= applied);
            for row in &rows[..upto] {
                if events.iter().any(|(e, _)| *e == row.event_id) {
                    fresh
                        .apply(&row.event_id, &row.site, &row.tx, row.received_at)
                        .map_err(|e| LeadEnd::Fatal(e.into()))?;
                }
            }
            let Some(last) = rows[..upto].last().map(|r| r.position) else {
                break;
            };
            after = last;
        }
        let counted = fresh.figures();
        for (event, ends_at) in events {
            let figures = counted
                .iter()
                .filter(|((e, _, _), _)| e == event)
                .map(|((_, site, currency), v)| ((site.clone(), *currency), *v))
                .collect();
            let window = fresh.window(event).unwrap_or(LateWindow {
                ends_at: *ends_at,
                latest_received: UnixNanos(i64::MIN),
            });
            late.replace_event(event, window, figures);
        }
        tracing::info!(
            events = events.len(),
            upto = applied,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "late figures counted again from the ledger (an event's end moved across rows already folded, or a database from before them)"
        );
        Ok(())
    }

    async fn lead(&self, stop: &mut watch::Receiver<bool>) -> LeadEnd {
        match self.lead_inner(stop).await {
            Ok(()) => LeadEnd::Stopped,
            Err(end) => end,
        }
    }

    async fn lead_inner(&self, stop: &mut watch::Receiver<bool>) -> Result<(), LeadEnd> {
        let loaded = self.store.load_totals().await?;
        let (mut applied, mut book) = (loaded.applied, loaded.book);
        let mut late = loaded.late;
        let breakdown_applied = loaded.breakdown_applied;
        // The national breakdown rows are derived from the per-site ones: rewrite any that
        // differ (a database migrated from before breakdowns starts with none), without moving.
        let (marked, extra) = book.mark_segments_differing(&loaded.segments);
        if extra > 0 {
            tracing::warn!(
                keys = extra,
                "national breakdown rows without per-site figures behind them; saleboard verify names them"
            );
        }
        // So are the national hourly rows (a database migrated from before them has none).
        let (hours_marked, hours_extra) =
            book.mark_national_hours_differing(&loaded.national_hourly);
        if hours_extra > 0 {
            tracing::warn!(
                hours = hours_extra,
                "national hourly rows without per-site figures behind them; saleboard verify names them"
            );
        }
        // Every event's end, before any row is folded (see the recount below).
        let recount = self.sync_windows(&mut late, applied > 0).await?;
        // The breakdown figures were stored up to their own watermark: fold the rows after it
        // into them (the headline figures hold those already).
        let mut behind = breakdown_applied;
        while behind < applied {
            let rows = self
                .store
                .read_ledger(behind, self.config.batch_rows)
                .await?;
            let upto = rows.partition_point(|r| r.position <= applied);
            self.know_ends(&mut late, &rows[..upto]).await?;
            let folded = fold_with(
                &mut book,
                &mut late,
                behind,
                &rows[..upto],
                TotalsBook::apply_breakdowns,
            )?;
            let Some(last) = folded.last else {
                return Err(LeadEnd::Fatal(EngineError::Gap {
                    applied: behind,
                    found: applied,
                }));
            };
            behind = last;
        }
        // The late figures of an event whose end moved across folded rows (or of a database
        // from before them) counted again, at `applied` (after the catch-up above, whose late
        // folds of those events this replaces).
        if !recount.is_empty() {
            self.recount_late(&mut late, &recount, applied).await?;
        }
        if marked > 0 || hours_marked > 0 || book.breakdowns_pending() || late.pending() {
            let mut changes = book.take_changes();
            changes.late = late.take_changes();
            self.store
                .apply_totals(applied, applied, &changes, UnixNanos::now())
                .await?;
            tracing::info!(
                keys = marked,
                hours = hours_marked,
                "national breakdown and hourly figures rewritten from the per-site figures"
            );
        }
        self.status.send_replace(LocalStatus {
            active: true,
            applied,
        });
        let renew_every = self.config.lease() / 5;
        let mut renewed = Instant::now();
        let mut last_apply: Option<Instant> = None;
        // When the breakdown figures were last written (see --aggregator-breakdown-ms), the
        // watermark this lead last gave them, and the write of them under way (at most one).
        let mut breakdowns_written = Instant::now();
        let mut breakdown_applied = applied;
        let mut flushing: Option<Flush> = None;
        let mut full_batch = false;
        let mut windows_read = Instant::now();
        // While behind, the next batch is read and folded during the previous one's write.
        let mut ahead: Option<Folded> = None;
        loop {
            if *stop.borrow() {
                // A batch folded ahead holds rows after `applied` in every figure of the book:
                // nothing more is written (the next lead's catch-up folds the breakdowns from
                // their watermark).
                if ahead.is_some() {
                    finish(flushing.take()).await?;
                    return Ok(());
                }
                // Stopped: the breakdown figures held back behind a write under way go too,
                // so a stopped aggregator leaves them at the applied position.
                if book.breakdowns_pending() || late.pending() {
                    self.catch_up_breakdowns(&mut book, &mut late, applied, flushing.take())
                        .await?;
                } else {
                    finish(flushing.take()).await?;
                }
                return Ok(());
            }
            if flushing.as_ref().is_some_and(Flush::is_finished) {
                finish(flushing.take()).await?;
            }
            // The events' ends, read again every WINDOWS_EVERY (between two batches, never
            // with one folded ahead): a move across folded rows counts the event again, at
            // `applied`, once the breakdown figures (which the late ones go with) are there.
            if ahead.is_none() && windows_read.elapsed() >= WINDOWS_EVERY {
                windows_read = Instant::now();
                // An event without a window here had no row folded since the lead began
                // (folding one gives it a window): nothing to count again for it.
                let recount = self.sync_windows(&mut late, false).await?;
                if !recount.is_empty() {
                    self.catch_up_breakdowns(&mut book, &mut late, applied, flushing.take())
                        .await?;
                    breakdowns_written = Instant::now();
                    breakdown_applied = applied;
                    self.recount_late(&mut late, &recount, applied).await?;
                    let changes = Changes {
                        late: late.take_changes(),
                        breakdowns: true,
                        ..Changes::default()
                    };
                    self.store
                        .apply_breakdowns(applied, applied, &changes)
                        .await?;
                }
            }
            if renewed.elapsed() >= renew_every {
                let (now, until) = self.lease_until();
                if !self.store.try_lease(&self.instance_id, now, until).await? {
                    return Err(LeadEnd::Lost(Lost::TakenOver));
                }
                renewed = Instant::now();
            }
            // Pace the transactions while rows trickle in (see --aggregator-min-apply-ms).
            if let Some(started) = last_apply {
                let ready = started + Duration::from_millis(self.config.min_apply_ms);
                if !full_batch && Instant::now() < ready {
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep_until(ready.into()) => {}
                    }
                }
            }
            let folded = match ahead.take() {
                Some(folded) => folded,
                None => {
                    let rows = self
                        .store
                        .read_ledger(applied, self.config.batch_rows)
                        .await?;
                    self.know_ends(&mut late, &rows).await?;
                    fold(&mut book, &mut late, applied, &rows)?
                }
            };
            let Some(last) = folded.last else {
                // Caught up with every committed row: the breakdown figures catch up too.
                if book.breakdowns_pending() || late.pending() {
                    self.catch_up_breakdowns(&mut book, &mut late, applied, flushing.take())
                        .await?;
                    breakdowns_written = Instant::now();
                    breakdown_applied = applied;
                    continue;
                }
                self.metrics.lag.record(0, &[]);
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(self.config.idle_poll()) => {}
                }
                continue;
            };
            last_apply = Some(Instant::now());
            full_batch = folded.rows >= self.config.batch_rows as usize;
            // The headline figures go now. The breakdown figures (the most numerous rows) go
            // in a write of their own beside the next headline applies, which never wait for
            // them: while the ledger is busy at most every --aggregator-breakdown-ms (waiting
            // writes each once for more ledger rows), when quiet at once; and only once the
            // write before has finished (one at a time). A headline apply that waited for a
            // breakdown write, or carried a second of breakdown rows, is what made the
            // freshness tail: a fold of a few rows between two group commits counted as quiet.
            if flushing.as_ref().is_some_and(Flush::is_finished) {
                finish(flushing.take()).await?;
            }
            let busy = folded.rows >= BUSY_ROWS;
            let changes = book.take_headline_changes();
            let due = flushing.is_none()
                && (!busy || breakdowns_written.elapsed() >= self.config.breakdown_interval());
            // Taken now, at `last` (before the next batch is folded in below).
            let breakdowns = due.then(|| {
                let mut changes = book.take_breakdown_changes();
                changes.late = late.take_changes();
                changes
            });
            if due {
                breakdowns_written = Instant::now();
            }
            // Behind (a full batch): read what follows and fold it while this batch's totals
            // are written. The read only sees committed ledger rows after `last`, whatever the
            // write does; the fold only changes this lead's book, which a failed (or fenced)
            // write throws away with the lead.
            let write = self
                .store
                .apply_totals(applied, last, &changes, UnixNanos::now());
            if full_batch {
                let next = async {
                    let rows = self.store.read_ledger(last, self.config.batch_rows).await?;
                    self.know_ends(&mut late, &rows).await?;
                    fold(&mut book, &mut late, last, &rows)
                };
                let (written, next) = tokio::join!(write, next);
                written?;
                ahead = Some(next?);
            } else {
                write.await?;
            }
            tracing::debug!(
                from = applied,
                to = last,
                rows = folded.rows,
                busy,
                ms = last_apply.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3),
                "totals applied"
            );
            applied = last;
            if let Some(breakdowns) = breakdowns {
                // Each from the watermark the one before gave.
                let store = self.store.clone();
                let from = std::mem::replace(&mut breakdown_applied, applied);
                flushing = Some(Flush(tokio::spawn(async move {
                    let started = Instant::now();
                    let written = store.apply_breakdowns(from, applied, &breakdowns).await;
                    tracing::debug!(
                        from,
                        to = applied,
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        "breakdowns applied"
                    );
                    written
                })));
            }
            self.metrics.applied.add(folded.rows as u64, &[]);
            self.status.send_replace(LocalStatus {
                active: true,
                applied,
            });
        }
    }
}

/// A write of deferred breakdown figures under way, beside the headline applies. Dropped
/// unfinished (the lead ended on another error), it is cancelled: its transaction rolls back.
struct Flush(tokio::task::JoinHandle<Result<(), StorageError>>);

impl Flush {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for a breakdown write under way, if any: its failure ends the lead like any write's
/// (the book is reloaded from what is committed).
async fn finish(flush: Option<Flush>) -> Result<(), LeadEnd> {
    let Some(mut flush) = flush else {
        return Ok(());
    };
    match (&mut flush.0).await {
        Ok(result) => result.map_err(LeadEnd::from),
        Err(e) => Err(LeadEnd::Lost(Lost::Flush(e.to_string()))),
    }
}

/// A batch of ledger rows folded into the book (its changes not yet taken).
struct Folded {
    /// The last position folded; `None` when there was nothing to read.
    last: Option<u64>,
    /// Rows folded.
    rows: usize,
}

/// Folds rows read after `applied` into every figure of `book`, checking that they follow it
/// without a gap.
fn fold(
    book: &mut TotalsBook,
    late: &mut LateBook,
    applied: u64,
    rows: &[saleboard_storage::LedgerRow],
) -> Result<Folded, LeadEnd> {
    fold_with(book, late, applied, rows, TotalsBook::apply)
}

/// How a row is folded: into every figure ([`TotalsBook::apply`]) or into the breakdowns
/// alone ([`TotalsBook::apply_breakdowns`]).
type Apply = fn(
    &mut TotalsBook,
    &str,
    &saleboard_domain::SiteId,
    &saleboard_domain::transaction::ValidTransaction,
) -> Result<(), TotalsOverflow>;

/// As [`fold`], with `apply` for each row (and the late figures, which go with the
/// breakdowns, folded either way).
fn fold_with(
    book: &mut TotalsBook,
    late: &mut LateBook,
    applied: u64,
    rows: &[saleboard_storage::LedgerRow],
    apply: Apply,
) -> Result<Folded, LeadEnd> {
    for (expected, row) in (applied + 1..).zip(rows) {
        if row.position != expected {
            return Err(LeadEnd::Fatal(EngineError::Gap {
                applied: expected - 1,
                found: row.position,
            }));
        }
        apply(book, &row.event_id, &row.site, &row.tx).map_err(|e| LeadEnd::Fatal(e.into()))?;
        late.apply(&row.event_id, &row.site, &row.tx, row.received_at)
            .map_err(|e| LeadEnd::Fatal(e.into()))?;
    }
    Ok(Folded {
        last: rows.last().map(|r| r.position),
        rows: rows.len(),
    })
}
