//! The board: owns the current [`Snapshot`] and publishes a new one whenever the figures change.
//! It learns of changes from the storage's applied feed (LISTEN/NOTIFY on PostgreSQL) and from
//! the admin service in this process (sites, event, rates), with a slow periodic refresh as a
//! safety net; it never scans the ledger. Queries and watchers share the snapshot through a
//! `watch` channel, so hundreds of watchers cost one build per change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use saleboard_domain::comparison::BaselineData;
use saleboard_domain::curve::{Hours, add_hours, remove_hours};
use saleboard_domain::{Currency, EventState, Events, UnixNanos};
use saleboard_storage::{BoardCursor, EventTotals, Store};
use tokio::sync::{Notify, watch};

use crate::snapshot::{
    Comparison, Figures, SegmentMap, Snapshot, add_disabled_site, merge_segments, merge_totals,
    remove_disabled_site,
};

/// How long a snapshot stays available to page tokens.
pub const PAGE_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Most snapshots kept for page tokens.
const HISTORY: usize = 256;
/// Refresh even without a signal this often (e.g. sites created through another process).
const SAFETY_REFRESH: Duration = Duration::from_secs(5);
/// How soon a failed refresh is tried again (a storage fault: the board catches up within this
/// of the fault clearing).
const RETRY_REFRESH: Duration = Duration::from_millis(250);

/// Says (once per change, not at every refresh) which sites left the national figure because
/// theirs is out of range, naming the currencies, and which came back.
fn log_out_of_range(previous: &Figures, next: &Figures) {
    let before: std::collections::BTreeMap<_, _> = previous
        .out_of_range()
        .map(|e| (&e.site_id, &e.out_of_range))
        .collect();
    for e in next.out_of_range() {
        if before.get(&e.site_id) != Some(&&e.out_of_range) {
            let currencies: Vec<&str> = e.out_of_range.iter().map(Currency::code).collect();
            tracing::error!(
                site = %e.site_id,
                currencies = ?currencies,
                "the figure of site {} in {} does not fit the contract's int64; the site is marked out of range and left out of the national figure, every other site stays live",
                e.site_id,
                currencies.join(", ")
            );
        }
    }
    for site in before.keys() {
        if !next.out_of_range().any(|e| &&e.site_id == site) {
            tracing::info!(site = %site, "site {site} is back in range");
        }
    }
}

/// What the board holds of its last read of the current event: the next refresh reads only
/// what changed since, and merges it in.
#[derive(Debug)]
struct Held {
    event_id: String,
    /// The applied position of the read, and its breakdown watermark.
    applied: u64,
    breakdown_applied: u64,
    /// The version of the sites table at the read, and every site.
    sites_version: u64,
    sites: Vec<saleboard_storage::SiteRecord>,
    /// The sites held in the event (read with the sites).
    holds: Vec<saleboard_domain::SiteId>,
    /// The sites with a flag under review in the event (read with the sites).
    under_review: Vec<saleboard_domain::SiteId>,
    /// Every total of the event, by site and currency.
    totals: EventTotals,
    /// National rows, every site.
    national: Arc<SegmentMap>,
    /// The disabled sites' origin rows at the read (what says their breakdown rows moved),
    /// and their breakdown rows.
    disabled_origins: Vec<(
        saleboard_domain::SiteId,
        Vec<saleboard_storage::SegmentSiteRow>,
    )>,
    disabled: Arc<DisabledRows>,
    /// `disabled` summed per key.
    disabled_sum: Arc<SegmentMap>,
    /// The disabled sites' hourly rows, and their sum (taken out of the national curve).
    disabled_hours: Arc<DisabledHours>,
    disabled_hours_sum: Arc<Hours>,
}

impl Held {
    /// Where a read that continues this one starts.
    fn cursor(&self) -> BoardCursor<'_> {
        BoardCursor {
            event_id: &self.event_id,
            applied: self.applied,
            breakdown_applied: self.breakdown_applied,
            sites_version: self.sites_version,
            sites: &self.sites,
            totals: &self.totals,
            disabled_origins: &self.disabled_origins,
        }
    }
}

/// Rows of one kind kept per disabled site.
type PerSite<R> = std::collections::BTreeMap<saleboard_domain::SiteId, Arc<Vec<R>>>;

/// The hourly rows of each disabled site.
type DisabledHours = PerSite<saleboard_storage::HourRow>;

/// The breakdown rows of each disabled site.
type DisabledRows = PerSite<saleboard_storage::SegmentSiteRow>;

/// Rows of one kind kept per disabled site, and their sum.
type Kept<R, S> = (Arc<PerSite<R>>, Arc<S>);

/// What one kind of the disabled sites' rows (breakdown or hourly) is after a read: the held
/// rows of the sites still disabled (`still`) and not read again, the `read` ones of the
/// others; and their sum, changed from the held one by the sites that changed only. A sum that
/// does not add up (a fault of this process or the store, never expected) is made again from
/// the rows as kept, and said.
fn keep_disabled<R, S: Clone + Default>(
    held: Option<(&PerSite<R>, &Arc<S>)>,
    still: &std::collections::BTreeSet<&saleboard_domain::SiteId>,
    read: Vec<(saleboard_domain::SiteId, Vec<R>)>,
    add: fn(&mut S, &[R]) -> Result<(), String>,
    remove: fn(&mut S, &[R]) -> Result<(), String>,
) -> Kept<R, S> {
    let (mut rows, mut sum) = match held {
        Some((rows, sum)) => (rows.clone(), sum.clone()),
        None => (PerSite::new(), Arc::default()),
    };
    let gone: Vec<_> = rows
        .keys()
        .filter(|site| !still.contains(site))
        .cloned()
        .collect();
    if gone.is_empty() && read.is_empty() {
        return (Arc::new(rows), sum);
    }
    let sum_now = Arc::make_mut(&mut sum);
    let mut fault = None;
    for site in gone {
        if let Some(old) = rows.remove(&site) {
            fault = fault.or(remove(sum_now, &old).err());
        }
    }
    for (site, read_rows) in read {
        if let Some(old) = rows.get(&site) {
            fault = fault.or(remove(sum_now, old).err());
        }
        fault = fault.or(add(sum_now, &read_rows).err());
        rows.insert(site, Arc::new(read_rows));
    }
    if let Some(e) = fault {
        tracing::error!(error = %e, "the disabled sites' rows do not add up; summed again");
        let mut again = S::default();
        for rows in rows.values() {
            if let Err(e) = add(&mut again, rows) {
                tracing::error!(error = %e, "a disabled site's rows do not add up");
            }
        }
        *sum_now = again;
    }
    (Arc::new(rows), sum)
}

/// The disabled sites' breakdown and hourly rows after a read (see [`keep_disabled`]).
fn disabled_after(
    held: Option<&Held>,
    read: &mut saleboard_storage::SegmentRead,
) -> (
    Kept<saleboard_storage::SegmentSiteRow, SegmentMap>,
    Kept<saleboard_storage::HourRow, Hours>,
) {
    let still: std::collections::BTreeSet<&saleboard_domain::SiteId> =
        read.disabled_totals.iter().map(|(s, _, _)| s).collect();
    let breakdowns = keep_disabled(
        held.map(|h| (&*h.disabled, &h.disabled_sum)),
        &still,
        std::mem::take(&mut read.disabled),
        |sum, rows| {
            add_disabled_site(sum, rows);
            Ok(())
        },
        |sum, rows| {
            remove_disabled_site(sum, rows);
            Ok(())
        },
    );
    let hours = keep_disabled(
        held.map(|h| (&*h.disabled_hours, &h.disabled_hours_sum)),
        &still,
        std::mem::take(&mut read.disabled_hourly),
        |sum, rows| add_hours(sum, rows).map_err(|e| e.to_string()),
        |sum, rows| remove_hours(sum, rows).map_err(|e| e.to_string()),
    );
    (breakdowns, hours)
}

/// The board of one leaderboard process.
#[derive(Debug)]
pub struct Board {
    store: Arc<dyn Store>,
    current: watch::Sender<Arc<Snapshot>>,
    history: Mutex<VecDeque<Arc<Snapshot>>>,
    invalidated: Notify,
    closing: watch::Sender<bool>,
    /// When storage was last read successfully (Unix nanoseconds), changed or not.
    checked_at: std::sync::atomic::AtomicI64,
    /// Held from reading storage to publishing: two refreshes at once (the feed's and an
    /// admin call's) would otherwise let the older read publish last and undo the newer one.
    refreshing: tokio::sync::Mutex<()>,
    /// Snapshots of events other than the current one, built when asked for: reused while the
    /// applied position has not moved, or once the event is closed (final), and until the
    /// sites change (a site disabled leaves every event's figures) or an admin call changes
    /// anything; then read again, and kept as they were if their figures did not change.
    /// (snapshot, closed, still fresh).
    others: Mutex<HashMap<String, OtherEvent>>,
    /// Moves each time `others` are forgotten: a build of another event that read storage
    /// before an admin change and finishes after it is kept as not fresh (read again next
    /// time), never as the figures after the change.
    forgotten: std::sync::atomic::AtomicU64,
    /// For each closed event, the ledger head read at least [`CLOSE_SLACK_SECS`] after it
    /// closed: no row of the event is above it (a row's event is decided in the transaction
    /// that commits it, which takes far less), so its figures are final once both of their
    /// watermarks reach it, however busy the ledger is with other events' rows.
    closed_bounds: Mutex<HashMap<String, u64>>,
    /// The sites as of the last refresh (id, name, disabled): when they change, `others` are
    /// read again.
    sites: Mutex<Vec<(saleboard_domain::SiteId, String, bool)>>,
    /// The last snapshot generation handed out (shared by every event's snapshots, so a page
    /// token names one snapshot).
    generations: std::sync::atomic::AtomicU64,
    /// Every event as of the last refresh (states, windows, baselines): read by queries
    /// without going to the database.
    events: Mutex<Arc<Events>>,
    /// The current event as last read (sites, totals, breakdown rows). A refresh reads only
    /// the site totals and national rows changed since, the sites only when they changed, and
    /// the disabled sites' rows only when their totals moved; the safety refresh reads them all
    /// again. Taken out by a refresh (one at a time) and put back when it read.
    held: Mutex<Option<Held>>,
    /// One site's breakdowns as answered, kept for their page tokens.
    site_breakdowns: Mutex<VecDeque<Arc<crate::breakdown::SiteBreakdown>>>,
    /// Baseline events' data as last read, by id (see [`Board::baseline_data`]).
    baselines: Mutex<HashMap<String, KeptBaseline>>,
}

/// A baseline's data as read: (data, the applied position then, when), and the position at which
/// its figures had last changed, when known.
type KeptBaseline = (Arc<BaselineData>, u64, std::time::Instant, Option<u64>);

/// How long a baseline's data is reused while the applied position moves, when the board does
/// not know whether its figures moved (a baseline named in a request rather than the event's own).
const BASELINE_REUSE: Duration = Duration::from_secs(1);

/// Another event's snapshot as kept: (snapshot, the event was closed, still fresh).
type OtherEvent = (Arc<Snapshot>, bool, bool);

/// How long after an event closes a ledger head read bounds its rows (see `closed_bounds`):
/// far longer than the transaction that commits a row the event accepted before its close.
const CLOSE_SLACK_SECS: i64 = 60;

impl Board {
    /// A board with its first snapshot built.
    ///
    /// # Errors
    /// When storage cannot be read.
    pub async fn new(store: Arc<dyn Store>) -> Result<Arc<Self>, saleboard_storage::StorageError> {
        let board = Arc::new(Self {
            store,
            current: watch::Sender::new(Arc::new(Snapshot {
                generation: 0,
                as_of: UnixNanos::now(),
                stale: false,
                figures: Figures::default(),
            })),
            history: Mutex::new(VecDeque::new()),
            invalidated: Notify::new(),
            closing: watch::Sender::new(false),
            checked_at: std::sync::atomic::AtomicI64::new(UnixNanos::now().0),
            refreshing: tokio::sync::Mutex::new(()),
            others: Mutex::new(HashMap::new()),
            forgotten: std::sync::atomic::AtomicU64::new(0),
            closed_bounds: Mutex::new(HashMap::new()),
            sites: Mutex::new(Vec::new()),
            generations: std::sync::atomic::AtomicU64::new(0),
            events: Mutex::new(Arc::default()),
            held: Mutex::new(None),
            site_breakdowns: Mutex::new(VecDeque::new()),
            baselines: Mutex::new(HashMap::new()),
        });
        board.refresh_with(true).await?;
        Ok(board)
    }

    /// Moves each time an admin call may have changed any figure (other events' snapshots are
    /// forgotten then): what is kept from an older epoch is made again.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The current snapshot.
    #[must_use]
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.borrow().clone()
    }

    /// The snapshot of an event: the current one for "" or the current event's id; another
    /// event's built from storage (or reused, see `others`). `None` for an unknown event.
    ///
    /// # Errors
    /// When storage cannot be read.
    pub async fn of_event(
        &self,
        event_id: &str,
    ) -> Result<Option<Arc<Snapshot>>, saleboard_storage::StorageError> {
        let current = self.current();
        let is_current = current
            .figures
            .event
            .as_ref()
            .is_some_and(|(id, _)| id == event_id);
        if event_id.is_empty() || is_current {
            return Ok(Some(current));
        }
        let cached = self
            .others
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(event_id)
            .cloned();
        if let Some((snapshot, closed, true)) = &cached
            && (*closed
                || (
                    snapshot.figures.watermark,
                    snapshot.figures.breakdown_watermark,
                ) == (
                    current.figures.watermark,
                    current.figures.breakdown_watermark,
                ))
        {
            return Ok(Some(snapshot.clone()));
        }
        let epoch = self.forgotten.load(std::sync::atomic::Ordering::SeqCst);
        // The ledger's head before the read: a closed event's figures are final (kept without
        // reading again) only once they hold every row of it (see `closed_bounds`), headline
        // and breakdowns alike; read before the aggregator caught up (as at start-up, with a
        // history just appended), they are read again.
        let read_at = UnixNanos::now();
        let read = match self.store.ledger_head().await {
            Ok(head) => self
                .store
                .read_board(Some(event_id), None)
                .await
                .map(|data| (head, data)),
            Err(e) => Err(e),
        };
        let (head, mut data) = match read {
            Ok(read) => read,
            // Storage cannot be read: the last figures read of that event, marked, rather than
            // none.
            Err(e) => match cached {
                Some((snapshot, ..)) => return Ok(Some(self.stale_copy(event_id, &snapshot))),
                None => return Err(e),
            },
        };
        let Some(event) = data.event.clone() else {
            return Ok(None);
        };
        let closed = event.state(UnixNanos::now()) == EventState::Closed;
        let settled = closed && {
            let mut bounds = self
                .closed_bounds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if read_at >= event.closes_at.saturating_add_secs(CLOSE_SLACK_SECS) {
                bounds.entry(event.event_id.clone()).or_insert(head);
            }
            bounds
                .get(&event.event_id)
                .is_some_and(|&bound| data.applied >= bound && data.segments.applied >= bound)
        };
        let comparison = self.own_comparison(&event, &data).await?;
        let segments = merge_segments(None, &data.segments);
        let ((_, disabled), (_, disabled_hours)) = disabled_after(None, &mut data.segments);
        // Read without a cursor: every site and every total.
        let sites = data.sites.take().unwrap_or_default();
        let holds = data.held.take().unwrap_or_default();
        let under_review = data.under_review.take().unwrap_or_default();
        let mut totals = EventTotals::new();
        merge_totals(&mut totals, true, std::mem::take(&mut data.totals));
        let mut figures = Figures::build(
            data,
            &sites,
            &totals,
            &segments,
            &disabled,
            &disabled_hours,
            crate::snapshot::Marks {
                held: &holds,
                under_review: &under_review,
            },
        );
        figures.comparison = comparison;
        if closed {
            // A final result lists the sites that took part, not every site registered since.
            figures.entries.retain(|e| e.rank != 0);
            // Held sites are unranked (rank 0) and still took part when they sold.
            figures
                .held
                .retain(|e| e.sale_count > 0 || e.refund_count > 0);
            figures.site_count =
                u32::try_from(figures.entries.len() + figures.held.len()).unwrap_or(u32::MAX);
        }
        // Figures that did not change keep their snapshot (its generation, its time): a
        // screen of a final result is not sent it again. (A closed event's figures are final:
        // the applied position moving with other events' rows changes nothing in them.)
        // Nor does a site registered since (GetSiteTotals finds it in the current snapshot:
        // a site registered after an event closed has nothing in it).
        if closed && let Some((previous, ..)) = &cached {
            let read_at = (
                std::mem::replace(&mut figures.watermark, previous.figures.watermark),
                std::mem::replace(
                    &mut figures.breakdown_watermark,
                    previous.figures.breakdown_watermark,
                ),
                std::mem::replace(&mut figures.sites, previous.figures.sites.clone()),
            );
            if previous.figures != figures {
                (
                    figures.watermark,
                    figures.breakdown_watermark,
                    figures.sites,
                ) = read_at;
            }
        }
        let snapshot = match cached {
            Some((previous, ..)) if previous.figures == figures && !previous.stale => previous,
            _ => Arc::new(Snapshot {
                generation: self.next_generation(),
                as_of: UnixNanos::now(),
                stale: false,
                figures,
            }),
        };
        {
            let mut others = self
                .others
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Checked under the lock `forget_other_events` takes after moving the epoch.
            let fresh = self.forgotten.load(std::sync::atomic::Ordering::SeqCst) == epoch;
            others.insert(event_id.to_owned(), (snapshot.clone(), settled, fresh));
        }
        self.keep_for_page_tokens(snapshot.clone());
        Ok(Some(snapshot))
    }

    /// Another event's kept snapshot marked stale (once: the marked copy is kept in its place).
    fn stale_copy(&self, event_id: &str, snapshot: &Arc<Snapshot>) -> Arc<Snapshot> {
        if snapshot.stale {
            return snapshot.clone();
        }
        let marked = Arc::new(snapshot.paused(self.next_generation(), self.checked_at()));
        self.others
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(event_id.to_owned())
            .and_modify(|(kept, _, fresh)| {
                *kept = marked.clone();
                *fresh = false;
            });
        self.keep_for_page_tokens(marked.clone());
        marked
    }

    /// When storage last answered a refresh.
    fn checked_at(&self) -> UnixNanos {
        UnixNanos(self.checked_at.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Marks the current figures stale (storage cannot be read): published once, so every
    /// screen and watcher says so, until a refresh succeeds and publishes fresh figures.
    fn pause(&self) {
        let current = self.current();
        if current.stale || current.generation == 0 {
            return;
        }
        let marked = Arc::new(current.paused(self.next_generation(), self.checked_at()));
        self.keep_for_page_tokens(current);
        self.current.send_replace(marked);
    }

    /// The comparison of `event` (read in `data`) with its own baseline, at this instant.
    async fn own_comparison(
        &self,
        event: &saleboard_domain::Event,
        data: &saleboard_storage::BoardData,
    ) -> Result<Option<Comparison>, saleboard_storage::StorageError> {
        if event.baseline_event_id.is_empty() {
            return Ok(None);
        }
        let rates = data.rates.iter().copied().collect();
        self.compare(
            event,
            &rates,
            &event.baseline_event_id,
            &data.events,
            (data.applied, data.baseline_changed_at),
        )
        .await
    }

    /// Compares `event` (with its `rates`) with the event `baseline_id` at this instant, from
    /// the baseline's data ([`Board::baseline_data`], `at`: the applied position and, when
    /// known, the position at which the baseline's figures last changed) by the domain's one
    /// rule. `None` when no such baseline event exists.
    ///
    /// # Errors
    /// When the baseline's data must be read and storage cannot be (none kept).
    pub(crate) async fn compare(
        &self,
        event: &saleboard_domain::Event,
        rates: &std::collections::BTreeMap<Currency, saleboard_domain::Rate>,
        baseline_id: &str,
        events: &Events,
        at: (u64, Option<u64>),
    ) -> Result<Option<Comparison>, saleboard_storage::StorageError> {
        let Some(baseline) = events.get(baseline_id) else {
            return Ok(None);
        };
        let data = self.baseline_data(baseline, at).await?;
        Ok(Some(Comparison {
            baseline_event_id: baseline_id.to_owned(),
            figure: saleboard_domain::comparison::compare(event, rates, &data, UnixNanos::now()),
        }))
    }

    /// A baseline event's hourly nets and rates, kept until an admin call changes anything and
    /// read again when its figures moved: when the position at which they last changed is known
    /// (`at.1`, read with the snapshot), exactly when it moved; else when the applied position
    /// moved and the last read is older than [`BASELINE_REUSE`]. While storage cannot be read,
    /// the last read.
    async fn baseline_data(
        &self,
        baseline: &saleboard_domain::Event,
        at: (u64, Option<u64>),
    ) -> Result<Arc<BaselineData>, saleboard_storage::StorageError> {
        let (watermark, changed_at) = at;
        let kept = self
            .baselines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&baseline.event_id)
            .cloned();
        if let Some((data, read_at, read, known)) = &kept
            && data.event == *baseline
        {
            let unchanged = match (changed_at, known) {
                (Some(now), Some(then)) => now == *then,
                _ => *read_at == watermark || read.elapsed() < BASELINE_REUSE,
            };
            if unchanged {
                return Ok(data.clone());
            }
        }
        let read = async {
            let hourly = self.store.event_hourly(&baseline.event_id).await?;
            let rates = self.store.list_exchange_rates(&baseline.event_id).await?;
            Ok::<_, saleboard_storage::StorageError>(BaselineData {
                event: baseline.clone(),
                hourly,
                rates: rates.into_iter().collect(),
            })
        };
        let data = match read.await {
            Ok(data) => Arc::new(data),
            Err(e) => return kept.map(|k| k.0).ok_or(e),
        };
        self.baselines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                baseline.event_id.clone(),
                (
                    data.clone(),
                    watermark,
                    std::time::Instant::now(),
                    changed_at,
                ),
            );
        Ok(data)
    }

    /// A new snapshot generation (page tokens name one).
    pub(crate) fn next_generation(&self) -> u64 {
        self.generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// Keeps a snapshot that page tokens may name, for [`PAGE_TOKEN_LIFETIME`].
    fn keep_for_page_tokens(&self, snapshot: Arc<Snapshot>) {
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        history.push_back(snapshot);
        let oldest = UnixNanos::now()
            .saturating_add_secs(-i64::try_from(PAGE_TOKEN_LIFETIME.as_secs()).unwrap_or(60));
        while history.len() > HISTORY || history.front().is_some_and(|s| s.as_of < oldest) {
            history.pop_front();
        }
    }

    /// Keeps a site's breakdown for its page tokens (as snapshots are kept).
    pub(crate) fn keep_site_breakdown(&self, breakdown: Arc<crate::breakdown::SiteBreakdown>) {
        let mut kept = self
            .site_breakdowns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.push_back(breakdown);
        let oldest = UnixNanos::now()
            .saturating_add_secs(-i64::try_from(PAGE_TOKEN_LIFETIME.as_secs()).unwrap_or(60));
        while kept.len() > HISTORY || kept.front().is_some_and(|b| b.as_of < oldest) {
            kept.pop_front();
        }
    }

    /// A site's breakdown still kept for page tokens.
    #[must_use]
    pub(crate) fn site_breakdown(
        &self,
        generation: u64,
    ) -> Option<Arc<crate::breakdown::SiteBreakdown>> {
        self.site_breakdowns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|b| b.generation == generation)
            .cloned()
    }

    /// Every event as of the last refresh.
    #[must_use]
    pub fn events(&self) -> Arc<Events> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Receives every new snapshot (only the latest is kept for a slow reader).
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.current.subscribe()
    }

    /// Turns true when the board stops: watchers end their streams.
    #[must_use]
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// A snapshot still kept for page tokens.
    #[must_use]
    pub fn by_generation(&self, generation: u64) -> Option<Arc<Snapshot>> {
        let current = self.current();
        if current.generation == generation {
            return Some(current);
        }
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|s| s.generation == generation)
            .cloned()
    }

    /// How old the figures served now may be: the time since storage was last read.
    #[must_use]
    pub fn age(&self) -> Duration {
        let checked = self.checked_at.load(std::sync::atomic::Ordering::Relaxed);
        let nanos = UnixNanos::now().0.saturating_sub(checked);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
    }

    /// Marks the snapshots of events other than the current one to be read again when next
    /// asked for (after an admin change: a rate, a site, an event).
    pub fn forget_other_events(&self) {
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A baseline's rates or window may have changed too.
        self.baselines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        for (_, _, fresh) in self
            .others
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values_mut()
        {
            *fresh = false;
        }
    }

    /// Whether the figures published show `site` as `enabled` (as of the board's last read of
    /// the sites). Taken under the refresh lock: a refresh under way has published what it read
    /// by the time this answers.
    pub async fn shows_site(&self, site: &saleboard_domain::SiteId, enabled: bool) -> bool {
        let _no_refresh_under_way = self.refreshing.lock().await;
        self.sites
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(id, _, disabled)| id == site && *disabled != enabled)
    }

    /// Asks for a refresh now (after an admin change).
    pub fn invalidate(&self) {
        self.invalidated.notify_one();
    }

    /// Rebuilds from storage and publishes when the figures changed.
    ///
    /// # Errors
    /// When storage cannot be read. (A figure out of range marks its site; it does not stop
    /// the board.)
    pub async fn refresh(&self) -> Result<(), saleboard_storage::StorageError> {
        self.refresh_with(false).await
    }

    /// A refresh; `full` reads every site, total and breakdown row again instead of those
    /// changed since the last read (which also picks up rows rewritten without the applied
    /// position moving).
    async fn refresh_with(&self, full: bool) -> Result<(), saleboard_storage::StorageError> {
        let _one_at_a_time = self.refreshing.lock().await;
        // Taken out, so the merge below updates it in place; a refresh that fails leaves none,
        // and the next one reads everything again.
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .filter(|_| !full);
        let mut data = self
            .store
            .read_board(None, held.as_ref().map(Held::cursor))
            .await?;
        let (mut sites, mut totals, held_holds, held_review) = held
            .as_mut()
            .map(|h| {
                (
                    std::mem::take(&mut h.sites),
                    std::mem::take(&mut h.totals),
                    std::mem::take(&mut h.holds),
                    std::mem::take(&mut h.under_review),
                )
            })
            .unwrap_or_default();
        // Read with the sites (a hold or a review moves their version), else as held.
        let holds = data.held.take().unwrap_or(held_holds);
        let under_review = data.under_review.take().unwrap_or(held_review);
        let sites_changed = match data.sites.take() {
            Some(read) => {
                let summary: Vec<_> = read
                    .iter()
                    .map(|s| {
                        (
                            s.site_id.clone(),
                            s.display_name.clone(),
                            s.disabled_at.is_some(),
                        )
                    })
                    .collect();
                sites = read;
                let mut seen = self
                    .sites
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let changed = *seen != summary;
                *seen = summary;
                changed
            }
            None => false,
        };
        if sites_changed {
            self.forget_other_events();
        }
        merge_totals(
            &mut totals,
            data.totals_full,
            std::mem::take(&mut data.totals),
        );
        let comparison = match data.event.clone() {
            Some(event) => self.own_comparison(&event, &data).await?,
            None => None,
        };
        let national = merge_segments(held.as_ref().map(|h| &h.national), &data.segments);
        let ((disabled, disabled_sum), (disabled_hours, disabled_hours_sum)) =
            disabled_after(held.as_ref(), &mut data.segments);
        *self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(std::mem::take(&mut data.events));
        self.checked_at
            .store(UnixNanos::now().0, std::sync::atomic::Ordering::Relaxed);
        let event_id = data
            .event
            .as_ref()
            .map_or_else(String::new, |e| e.event_id.clone());
        let (applied, breakdown_applied, sites_version) =
            (data.applied, data.segments.applied, data.sites_version);
        let disabled_origins = std::mem::take(&mut data.segments.disabled_origins);
        let mut figures = Figures::build(
            data,
            &sites,
            &totals,
            &national,
            &disabled_sum,
            &disabled_hours_sum,
            crate::snapshot::Marks {
                held: &holds,
                under_review: &under_review,
            },
        );
        figures.comparison = comparison;
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Held {
            event_id,
            applied,
            breakdown_applied,
            sites_version,
            sites,
            holds,
            under_review,
            totals,
            national,
            disabled_origins,
            disabled,
            disabled_sum,
            disabled_hours,
            disabled_hours_sum,
        });
        let previous = self.current();
        log_out_of_range(&previous.figures, &figures);
        if previous.generation > 0 && previous.figures == figures && !previous.stale {
            return Ok(());
        }
        let snapshot = Arc::new(Snapshot {
            generation: self.next_generation(),
            as_of: UnixNanos::now(),
            stale: false,
            figures,
        });
        self.keep_for_page_tokens(previous);
        self.current.send_replace(snapshot);
        Ok(())
    }

    /// Keeps the snapshot fresh until `stop` turns true, refreshing at most once per `gap`
    /// when the applied feed asks (see `--leaderboard-refresh-gap-ms`).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, gap: Duration) {
        let mut feed = match self.store.applied_feed().await {
            Ok(feed) => Some(feed),
            Err(e) => {
                tracing::warn!(error = %e, "no applied feed; refreshing every {SAFETY_REFRESH:?} only");
                None
            }
        };
        let mut safety = tokio::time::interval(SAFETY_REFRESH);
        let mut last_refresh: Option<tokio::time::Instant> = None;
        // Since when refreshes fail: while they do, the board tries again every
        // RETRY_REFRESH (not only at the next change or safety refresh, which may be 5 s
        // away once the aggregator has caught up), and the failure is logged once.
        let mut failing: Option<tokio::time::Instant> = None;
        loop {
            let changed = async {
                match feed.as_mut() {
                    Some(f) => f.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let retry = async {
                match failing {
                    Some(_) => tokio::time::sleep(RETRY_REFRESH).await,
                    None => std::future::pending().await,
                }
            };
            let full = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                alive = changed => { if !alive { feed = None; } false },
                () = self.invalidated.notified() => false,
                _ = safety.tick() => true,
                () = retry => true,
            };
            if let Some(last) = last_refresh {
                let ready = last + gap;
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    () = tokio::time::sleep_until(ready) => {}
                }
            }
            let started = tokio::time::Instant::now();
            last_refresh = Some(started);
            let refreshed = self.refresh_with(full).await;
            tracing::debug!(
                ms = started.elapsed().as_secs_f64() * 1e3,
                full,
                generation = self.current().generation,
                "refresh"
            );
            match refreshed {
                Ok(()) => {
                    if let Some(since) = failing.take() {
                        tracing::info!(
                            failed_for_ms =
                                u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                            "the leaderboard refreshes again"
                        );
                    }
                }
                Err(e) => {
                    // Every view serves the last figures, marked, until a refresh works.
                    self.pause();
                    if failing.is_none() {
                        tracing::warn!(
                            error = %e,
                            "cannot refresh the leaderboard; retrying every {RETRY_REFRESH:?} \
                             (logged once until it works)"
                        );
                        failing = Some(tokio::time::Instant::now());
                    } else {
                        tracing::debug!(error = %e, "cannot refresh the leaderboard");
                    }
                }
            }
        }
        self.closing.send_replace(true);
    }
}
