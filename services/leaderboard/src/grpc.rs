//! `saleboard.v1.LeaderboardService`: read-only figures from the board's snapshot (and, for one
//! site's totals and hourly series, one consistent read of the totals tables).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use saleboard_domain::comparison::Baseline;
use saleboard_domain::page::PageToken;
use saleboard_domain::totals::CurrencyTotals;
use saleboard_domain::{EventState, SiteId, UnixNanos};
use saleboard_proto::v1::leaderboard_service_server::LeaderboardService as LeaderboardApi;
use saleboard_proto::v1::{
    Breakdown, CurrencyTotals as CurrencyTotalsMsg, GetBreakdownRequest, GetLeaderboardRequest,
    GetNationalTotalsRequest, GetSiteTotalsRequest, HourlyTotals as HourlyTotalsMsg, Leaderboard,
    LeaderboardEntry, NationalTotals, SiteTotals, WatchLeaderboardRequest,
};
use saleboard_runtime::auth::{
    Authenticate as _, FailedAuthLimiter, ORGANIZER_SECRET_PREFIX, Organizer, Organizers,
    bearer_secret, secret_hash,
};
use saleboard_runtime::peer::{AddressKey, Allowance, limit_for};
use saleboard_runtime::status::{from_storage, invalid_field};
use saleboard_storage::Store;
use tonic::{Code, Request, Response, Status};

use crate::board::Board;
use crate::breakdown;
use crate::messages::timestamp;
use crate::snapshot::{Figures, Snapshot};

/// Entries per page when `limit` is 0.
pub const DEFAULT_LIMIT: u32 = 10;
/// Most entries per page.
pub const MAX_LIMIT: u32 = 1_000;
/// Watch interval when `min_interval_ms` is 0.
pub const DEFAULT_INTERVAL_MS: u32 = 250;
/// Shortest watch interval.
pub const MIN_INTERVAL_MS: u32 = 50;

/// Who may read what, and how many may watch.
#[derive(Debug, Clone)]
pub struct Access {
    /// Organizers (the token from configuration, named organizers) may read every site's
    /// detail.
    pub organizers: Organizers,
    /// Anyone may read every site's detail.
    pub public_site_detail: bool,
    /// Open watch streams at once.
    pub max_watchers: u32,
    /// Open watch streams per peer address (IPv6: per /64).
    pub max_watchers_per_peer: u32,
    /// Higher per-peer limits for some networks (a TV wall behind one address).
    pub watchers_per_peer_allow: Arc<[Allowance]>,
    /// Failed authentications per peer, shared with AdminService's auth layer: a guess of the
    /// organizer token costs the same budget whichever service it is tried on.
    pub failures: Arc<FailedAuthLimiter>,
}

/// The leaderboard gRPC service.
#[derive(Debug, Clone)]
pub struct LeaderboardService {
    board: Arc<Board>,
    store: Arc<dyn Store>,
    comparer: Comparer,
    watchers: opentelemetry::metrics::UpDownCounter<i64>,
    access: Access,
    open: Arc<Mutex<OpenWatchers>>,
}

/// Open watch streams, in total and per peer address.
#[derive(Debug, Default)]
struct OpenWatchers {
    total: u32,
    per_peer: HashMap<Option<AddressKey>, u32>,
}

/// Counts one open watcher (a WatchLeaderboard stream or a screen's SSE stream) for as long as
/// it lives.
pub(crate) struct Watching {
    counter: opentelemetry::metrics::UpDownCounter<i64>,
    open: Arc<Mutex<OpenWatchers>>,
    peer: Option<AddressKey>,
}

impl Watching {
    /// One more watcher from `peer`, or RESOURCE_EXHAUSTED naming the limit it is over.
    pub(crate) fn start(service: &LeaderboardService, ip: Option<IpAddr>) -> Result<Self, Status> {
        let peer = ip.map(AddressKey::from);
        let per_peer = ip.map_or(service.access.max_watchers_per_peer, |ip| {
            limit_for(
                ip,
                service.access.max_watchers_per_peer,
                &service.access.watchers_per_peer_allow,
            )
        });
        let mut open = service
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.total >= service.access.max_watchers {
            return Err(Status::resource_exhausted(format!(
                "the leaderboard already has {} watchers (--max-watchers); poll GetLeaderboard \
                 or retry later",
                service.access.max_watchers
            )));
        }
        let mine = open.per_peer.entry(peer).or_default();
        if *mine >= per_peer {
            return Err(Status::resource_exhausted(format!(
                "too many screens from this address: it already has {per_peer} watch streams \
                 open (--max-watchers-per-peer, raised for a network by \
                 --watchers-per-peer-allow); share one stream between screens"
            )));
        }
        *mine += 1;
        open.total += 1;
        service.watchers.add(1, &[]);
        Ok(Self {
            counter: service.watchers.clone(),
            open: service.open.clone(),
            peer,
        })
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.counter.add(-1, &[]);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
    }
}

impl LeaderboardService {
    /// NOT_FOUND unless the event exists (from the board's events; from storage for one created
    /// since its last refresh).
    async fn known_event(&self, event_id: &str) -> Result<(), Status> {
        let known = self.board.events().get(event_id).is_some()
            || self
                .store
                .events()
                .await
                .map_err(|e| from_storage(&e))?
                .get(event_id)
                .is_some();
        if known {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "event {:?} does not exist",
                saleboard_domain::ids::excerpt(event_id)
            )))
        }
    }

    /// The snapshot of an event ("" for the current one); NOT_FOUND for an unknown event.
    async fn snapshot_of(&self, event_id: &str) -> Result<Arc<Snapshot>, Status> {
        self.board
            .of_event(event_id)
            .await
            .map_err(|e| from_storage(&e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "event {:?} does not exist",
                    saleboard_domain::ids::excerpt(event_id)
                ))
            })
    }

    /// The first page of `snapshot` with its comparison (`baseline`: "" for the event's own):
    /// what `GetLeaderboard` answers, for one snapshot the caller already holds.
    pub(crate) async fn leaderboard_of(
        &self,
        snapshot: &Snapshot,
        limit: u32,
        baseline: &str,
    ) -> Result<Leaderboard, Status> {
        let board = page(snapshot, 0, limit_of(limit)?)?;
        let compared = self.comparer.compare(snapshot, baseline).await?;
        Ok(with_comparison(board, &compared))
    }

    /// The first page of `snapshot`'s national breakdown in `dimension`: what `GetBreakdown`
    /// answers, for one snapshot the caller already holds.
    pub(crate) fn breakdown_of(
        &self,
        snapshot: &Snapshot,
        dimension: saleboard_domain::Dimension,
        limit: u32,
    ) -> Result<Breakdown, Status> {
        self.national_breakdown_page(snapshot, dimension, 0, limit_of(limit)?)
    }

    /// The page of `snapshot`'s national breakdown in `dimension` that starts at `offset`.
    fn national_breakdown_page(
        &self,
        snapshot: &Snapshot,
        dimension: saleboard_domain::Dimension,
        offset: usize,
        limit: usize,
    ) -> Result<Breakdown, Status> {
        let f = &snapshot.figures;
        let (event_id, reporting) = f.event.as_ref().ok_or_else(no_event)?;
        let state = self
            .board
            .events()
            .get(event_id)
            .map_or(EventState::Live, |e| e.state(UnixNanos::now()));
        let view = breakdown::View {
            generation: snapshot.generation,
            as_of: snapshot.as_of,
            event_id,
            site_id: "",
            reporting: *reporting,
            state,
            dimension,
            watermark: f.breakdown_watermark,
            stale: snapshot.stale,
            ranking: f.breakdowns.get(dimension),
        };
        Ok(breakdown::page(&view, offset, limit))
    }

    /// A service reading `board` (and `store` for per-site detail).
    #[must_use]
    pub fn new(board: Arc<Board>, store: Arc<dyn Store>, access: Access) -> Self {
        let watchers = saleboard_runtime::telemetry::meter()
            .i64_up_down_counter("saleboard.leaderboard.watchers")
            .with_unit("{stream}")
            .with_description("Open WatchLeaderboard streams")
            .build();
        Self {
            comparer: Comparer {
                board: board.clone(),
                store: store.clone(),
            },
            board,
            store,
            watchers,
            access,
            open: Arc::default(),
        }
    }

    /// Whether the caller may read `site`'s detail: the organizer token, or an API key of that
    /// site (or anyone, with --public-site-detail).
    async fn may_read_detail(
        &self,
        metadata: &tonic::codegen::http::HeaderMap,
        peer: Option<IpAddr>,
        site: &SiteId,
        method: &'static str,
    ) -> Result<(), Status> {
        if self.access.public_site_detail {
            return Ok(());
        }
        self.access.failures.check(peer)?;
        let refused = self.check_detail(metadata, site).await;
        if let Err(status) = &refused
            && matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            )
        {
            self.access.failures.record(peer, method, status.code());
        }
        refused
    }

    /// The organizer a watch stream is opened by: `None` for a public one (no credential, or
    /// one that is not a named organizer's); a named organizer's secret must authenticate
    /// (UNAUTHENTICATED once revoked), and its stream ends when it is revoked.
    async fn watching_organizer(
        &self,
        metadata: &tonic::codegen::http::HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Option<Organizer>, Status> {
        let Ok(secret) = bearer_secret(metadata) else {
            return Ok(None);
        };
        if !secret.starts_with(ORGANIZER_SECRET_PREFIX) {
            return Ok(None);
        }
        self.access.failures.check(peer)?;
        match self.access.organizers.authenticate(secret).await {
            Ok(organizer) => {
                tracing::Span::current().record("organizer", organizer.name());
                tracing::debug!(organizer = %organizer, "an organizer watches the leaderboard");
                Ok(Some(organizer))
            }
            Err(status) => {
                if status.code() == Code::Unauthenticated {
                    self.access.failures.record(
                        peer,
                        "/saleboard.v1.LeaderboardService/WatchLeaderboard",
                        status.code(),
                    );
                }
                Err(status)
            }
        }
    }

    async fn check_detail(
        &self,
        metadata: &tonic::codegen::http::HeaderMap,
        site: &SiteId,
    ) -> Result<(), Status> {
        let secret = bearer_secret(metadata).map_err(|_| {
            Status::unauthenticated(
                "a site's detail (its hourly series, its breakdowns) needs \"authorization: \
                 Bearer <organizer token or that site's API key>\"",
            )
        })?;
        if let Ok(organizer) = self.access.organizers.authenticate(secret).await {
            tracing::Span::current().record("organizer", organizer.name());
            tracing::debug!(organizer = %organizer, site = %site, "an organizer reads a site's detail");
            return Ok(());
        }
        match self
            .store
            .find_active_key(&secret_hash(secret))
            .await
            .map_err(|e| from_storage(&e))?
        {
            Some(key) if key.site_id == *site => Ok(()),
            Some(_) => Err(Status::permission_denied(format!(
                "this API key belongs to another site; only site {site}'s own key or the \
                 organizer token reads its detail"
            ))),
            None => Err(Status::unauthenticated(
                "unknown or revoked API key or organizer token",
            )),
        }
    }
}

/// What woke a watch stream waiting for its next message.
enum Wake {
    /// The board published a snapshot (`false`: the board is gone).
    Changed(bool),
    /// The service is shutting down.
    Closing,
    /// Time to check that the stream's organizer was not revoked.
    Check,
}

/// The state of one `WatchLeaderboard` stream between two messages.
struct Watch {
    /// The board's snapshots.
    rx: tokio::sync::watch::Receiver<Arc<crate::snapshot::Snapshot>>,
    /// Set when the service shuts down.
    closing: tokio::sync::watch::Receiver<bool>,
    /// When the last message was sent (`None` before the first).
    last: Option<tokio::time::Instant>,
    /// The stream has ended (after an error).
    done: bool,
    /// An organizer's stream checks the organizer on each tick.
    revocation: tokio::time::Interval,
    /// The last message sent.
    sent: Option<Leaderboard>,
}

/// Whether two pages of a watch show the same thing: equal but for the time the figures were
/// read and the page token (both move with every generation, breakdown-only ones included).
fn same_page(a: &Leaderboard, b: &Leaderboard) -> bool {
    let strip = |p: &Leaderboard| Leaderboard {
        as_of: None,
        next_page_token: String::new(),
        ..p.clone()
    };
    strip(a) == strip(b)
}

/// How often an organizer's open watch stream checks that the organizer was not revoked.
const REVOCATION_CHECK: Duration = Duration::from_secs(1);

/// UNAUTHENTICATED when `organizer` was revoked; `None` while it may go on (or storage cannot
/// say: reads do not need the database, and the next check asks again).
async fn revoked(organizer: Option<&Organizer>, store: &dyn Store) -> Option<Status> {
    let organizer = organizer?;
    match organizer.still_active(store).await {
        Ok(true) | Err(_) => None,
        Ok(false) => {
            tracing::info!(organizer = %organizer, "an organizer's watch stream ends: revoked");
            Some(Status::unauthenticated(format!(
                "organizer {organizer} was revoked"
            )))
        }
    }
}

fn limit_of(limit: u32) -> Result<usize, Status> {
    match limit {
        0 => Ok(DEFAULT_LIMIT as usize),
        l if l > MAX_LIMIT => Err(invalid_field(
            "limit",
            format!("is {l}; at most {MAX_LIMIT} entries per page"),
        )),
        l => Ok(l as usize),
    }
}

fn totals_msg(currency: &str, t: &CurrencyTotals) -> CurrencyTotalsMsg {
    let fits = (
        i64::try_from(t.gross_minor),
        i64::try_from(t.refunded_minor),
        i64::try_from(t.net_minor()),
    );
    let (gross_minor, refunded_minor, net_minor, out_of_range) = match fits {
        (Ok(g), Ok(r), Ok(n)) => (g, r, n, false),
        _ => (0, 0, 0, true),
    };
    CurrencyTotalsMsg {
        currency: currency.to_owned(),
        sale_count: t.sale_count,
        gross_minor,
        refund_count: t.refund_count,
        refunded_minor,
        net_minor,
        out_of_range,
        gross_decimal: t.gross_minor.to_string(),
        refunded_decimal: t.refunded_minor.to_string(),
        net_decimal: t.net_minor().to_string(),
    }
}

/// The national net as the contract carries it: the `int64` figure (0 when it does not fit),
/// whether it is out of range, its exact decimal, and the sites left out of it.
fn national_net(f: &Figures) -> (i64, bool, String, Vec<String>) {
    let net = f.national_net_reporting_minor;
    let (minor, out_of_range) = i64::try_from(net).map_or((0, true), |n| (n, false));
    let sites = f.out_of_range().map(|e| e.site_id.to_string()).collect();
    (minor, out_of_range, net.to_string(), sites)
}

fn no_event() -> Status {
    Status::failed_precondition(
        "no event is configured; the organizer must call AdminService.SetEvent first",
    )
}

/// A page of a snapshot as a message.
fn page(snapshot: &Snapshot, offset: usize, limit: usize) -> Result<Leaderboard, Status> {
    let f = &snapshot.figures;
    let (event_id, reporting) = f.event.as_ref().ok_or_else(no_event)?;
    let (
        national_net_reporting_minor,
        national_out_of_range,
        national_net_reporting_decimal,
        out_of_range_sites,
    ) = national_net(f);
    let end = offset.saturating_add(limit).min(f.entries.len());
    let entries = f.entries.get(offset..end).unwrap_or_default();
    let next_page_token = if end < f.entries.len() {
        PageToken {
            generation: snapshot.generation,
            offset: end,
            dimension: None,
        }
        .encode()
    } else {
        String::new()
    };
    Ok(Leaderboard {
        event_id: event_id.clone(),
        reporting_currency: reporting.code().to_owned(),
        as_of: Some(timestamp(snapshot.as_of)),
        watermark: f.watermark,
        entries: entries
            .iter()
            .map(|e| LeaderboardEntry {
                rank: e.rank,
                site_id: e.site_id.to_string(),
                display_name: e.display_name.clone(),
                net_reporting_minor: e.net_reporting_minor,
                sale_count: e.sale_count,
                refund_count: e.refund_count,
                unconverted_currencies: e
                    .unconverted_currencies
                    .iter()
                    .map(|c| c.code().to_owned())
                    .collect(),
                out_of_range: !e.out_of_range.is_empty(),
                out_of_range_currencies: e
                    .out_of_range
                    .iter()
                    .map(|c| c.code().to_owned())
                    .collect(),
                // Filled by `with_comparison`.
                baseline_net_reporting_minor: 0,
                in_baseline: false,
                under_review: f.under_review.contains(&e.site_id),
            })
            .collect(),
        national_net_reporting_minor,
        next_page_token,
        national_out_of_range,
        national_net_reporting_decimal,
        out_of_range_sites,
        unconverted_currencies: codes(&f.unconverted_currencies()),
        // Filled by `with_comparison`.
        baseline_event_id: String::new(),
        baseline_net_reporting_minor: 0,
        state: 0,
        stale: snapshot.stale,
        held_sites: f.held.iter().map(|e| e.site_id.to_string()).collect(),
    })
}

/// An event's state and, when it has a baseline, the comparison with it.
struct Compared {
    state: saleboard_proto::v1::EventState,
    baseline_event_id: String,
    /// The baseline's figures, or the currencies that keep it from being converted.
    baseline: Option<Result<Baseline, Vec<saleboard_domain::Currency>>>,
}

/// Compares a snapshot's event with a baseline: its own one from the snapshot (computed once
/// per generation by the board, at its watermark); another one named in the request by the
/// board's same rule, from the baseline's data the board keeps.
#[derive(Debug, Clone)]
struct Comparer {
    board: Arc<Board>,
    store: Arc<dyn Store>,
}

impl Comparer {
    /// Compares the snapshot's event with `requested` (or its own baseline). NOT_FOUND for an
    /// unknown baseline.
    async fn compare(&self, snapshot: &Snapshot, requested: &str) -> Result<Compared, Status> {
        let f = &snapshot.figures;
        let (event_id, _) = f.event.as_ref().ok_or_else(no_event)?;
        let mut events = self.board.events();
        if events.get(event_id).is_none()
            || (!requested.is_empty() && events.get(requested).is_none())
        {
            // Created since the board's last refresh.
            events = Arc::new(self.store.events().await.map_err(|e| from_storage(&e))?);
        }
        let Some(event) = events.get(event_id) else {
            return Err(Status::not_found(format!(
                "event {event_id:?} does not exist"
            )));
        };
        let state = crate::messages::state_msg(event.state(UnixNanos::now()));
        let own = f
            .comparison
            .as_ref()
            .filter(|c| requested.is_empty() || c.baseline_event_id == requested);
        let compared = match own {
            Some(c) => Some(c.clone()),
            None if requested.is_empty() => None,
            None => {
                let compared = self
                    .board
                    .compare(event, &f.rates, requested, &events, (f.watermark, None))
                    .await
                    .map_err(|e| from_storage(&e))?;
                Some(compared.ok_or_else(|| {
                    Status::not_found(format!(
                        "baseline event {:?} does not exist",
                        saleboard_domain::ids::excerpt(requested)
                    ))
                })?)
            }
        };
        Ok(match compared {
            Some(c) => Compared {
                state,
                baseline_event_id: c.baseline_event_id,
                baseline: Some(c.figure),
            },
            None => Compared {
                state,
                baseline_event_id: String::new(),
                baseline: None,
            },
        })
    }
}

/// Writes the state and the comparison into a page of the leaderboard.
fn with_comparison(mut board: Leaderboard, compared: &Compared) -> Leaderboard {
    board.state = compared.state.into();
    board
        .baseline_event_id
        .clone_from(&compared.baseline_event_id);
    let mut named: Vec<String> = Vec::new();
    match &compared.baseline {
        None => {}
        Some(Err(currencies)) => named.extend(currencies.iter().map(|c| c.code().to_owned())),
        Some(Ok(b)) => {
            named.extend(b.unconverted.iter().map(|c| c.code().to_owned()));
            board.baseline_net_reporting_minor = i64::try_from(b.national).unwrap_or(0);
            let by_site: HashMap<&str, i128> =
                b.per_site.iter().map(|(s, v)| (s.as_str(), *v)).collect();
            for e in &mut board.entries {
                if let Some(v) = by_site.get(e.site_id.as_str()) {
                    e.in_baseline = true;
                    e.baseline_net_reporting_minor = i64::try_from(*v).unwrap_or(0);
                }
            }
        }
    }
    for code in named {
        if !board.unconverted_currencies.contains(&code) {
            board.unconverted_currencies.push(code);
        }
    }
    board
}

/// The national curve of a snapshot as the contract carries it.
pub(crate) fn national_hours(f: &Figures) -> Vec<saleboard_proto::v1::NationalHour> {
    f.hourly
        .iter()
        .map(|h| {
            let fits = h.net_reporting_minor.and_then(|n| i64::try_from(n).ok());
            saleboard_proto::v1::NationalHour {
                hour_start: Some(timestamp(h.hour_start)),
                net_reporting_minor: fits.unwrap_or(0),
                out_of_range: fits.is_none(),
                net_reporting_decimal: h
                    .net_reporting_minor
                    .map_or_else(String::new, |n| n.to_string()),
            }
        })
        .collect()
}

/// Currency codes, in order.
fn codes(currencies: &[saleboard_domain::Currency]) -> Vec<String> {
    currencies.iter().map(|c| c.code().to_owned()).collect()
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<Leaderboard, Status>> + Send>>;

#[tonic::async_trait]
impl LeaderboardApi for LeaderboardService {
    async fn list_events(
        &self,
        _: Request<saleboard_proto::v1::ListEventsRequest>,
    ) -> Result<Response<saleboard_proto::v1::ListEventsResponse>, Status> {
        // From the board's events (its last refresh: at once after an admin call here, within
        // its safety refresh after one elsewhere), so a screen's choice of events does not
        // depend on the database being up.
        Ok(Response::new(crate::messages::events_msg(
            &self.board.events(),
            UnixNanos::now(),
        )))
    }

    async fn get_leaderboard(
        &self,
        request: Request<GetLeaderboardRequest>,
    ) -> Result<Response<Leaderboard>, Status> {
        let req = request.into_inner();
        let limit = limit_of(req.limit)?;
        if req.page_token.is_empty() {
            let snapshot = self.snapshot_of(&req.event_id).await?;
            let board = page(&snapshot, 0, limit)?;
            let compared = self
                .comparer
                .compare(&snapshot, &req.baseline_event_id)
                .await?;
            return Ok(Response::new(with_comparison(board, &compared)));
        }
        let Some(PageToken {
            generation,
            offset,
            dimension: None,
        }) = PageToken::parse(&req.page_token)
        else {
            return Err(invalid_field(
                "page_token",
                "is not a leaderboard page token this service issued",
            ));
        };
        let snapshot = self.board.by_generation(generation).ok_or_else(|| {
            Status::failed_precondition(
                "page_token expired: its snapshot is no longer kept; start again without page_token",
            )
        })?;
        let board = page(&snapshot, offset, limit)?;
        let compared = self
            .comparer
            .compare(&snapshot, &req.baseline_event_id)
            .await?;
        Ok(Response::new(with_comparison(board, &compared)))
    }

    type WatchLeaderboardStream = WatchStream;

    async fn watch_leaderboard(
        &self,
        request: Request<WatchLeaderboardRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let headers = request.metadata().clone().into_headers();
        let organizer = self.watching_organizer(&headers, peer).await?;
        let req = request.into_inner();
        let limit = limit_of(req.limit)?;
        let interval_ms = match req.min_interval_ms {
            0 => DEFAULT_INTERVAL_MS,
            ms if ms < MIN_INTERVAL_MS => {
                return Err(invalid_field(
                    "min_interval_ms",
                    format!("is {ms}; at least {MIN_INTERVAL_MS} (0 means {DEFAULT_INTERVAL_MS})"),
                ));
            }
            ms => ms,
        };
        let interval = Duration::from_millis(u64::from(interval_ms));
        let first = self.snapshot_of(&req.event_id).await?;
        if first.figures.event.is_none() {
            return Err(no_event());
        }
        // "" or the current event's id follows the current event; another event is re-read
        // (or reused, when nothing moved) whenever the totals move.
        let other_event = (!req.event_id.is_empty() && !Arc::ptr_eq(&first, &self.board.current()))
            .then(|| req.event_id.clone());
        let board = self.board.clone();
        let comparer = self.comparer.clone();
        let baseline_request = req.baseline_event_id.clone();
        comparer.compare(&first, &baseline_request).await?;
        let snapshots = self.board.subscribe();
        let closing = self.board.closing();
        // The stream only advances when the transport asks for the next message, so a reader
        // that stops reading holds no backlog: when it resumes it gets the latest snapshot.
        let watching = Watching::start(self, peer)?;
        // An organizer's stream ends once the organizer is revoked: checked every second.
        let mut revocation = tokio::time::interval(REVOCATION_CHECK);
        revocation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let store = self.store.clone();
        let state = Watch {
            rx: snapshots,
            closing,
            last: None,
            done: false,
            revocation,
            sent: None,
        };
        let stream = futures::stream::unfold(state, move |mut w| {
            let (board, other_event) = (board.clone(), other_event.clone());
            let (comparer, baseline_request) = (comparer.clone(), baseline_request.clone());
            let (organizer, store) = (organizer.clone(), store.clone());
            async move {
                if w.done {
                    return None;
                }
                loop {
                    if let Some(last) = w.last {
                        let closed = loop {
                            let woken = tokio::select! {
                                changed = w.rx.changed() => Wake::Changed(changed.is_ok()),
                                _ = w.closing.wait_for(|c| *c) => Wake::Closing,
                                _ = w.revocation.tick(), if organizer.is_some() => Wake::Check,
                            };
                            match woken {
                                Wake::Changed(false) => return None,
                                Wake::Changed(true) => break None,
                                Wake::Closing => {
                                    break Some(Status::unavailable(
                                        "the leaderboard service is shutting down; reconnect",
                                    ));
                                }
                                Wake::Check => {
                                    if let Some(status) =
                                        revoked(organizer.as_ref(), store.as_ref()).await
                                    {
                                        break Some(status);
                                    }
                                }
                            }
                        };
                        if let Some(status) = closed {
                            w.done = true;
                            return Some((Err(status), w));
                        }
                        tokio::time::sleep_until(last + interval).await;
                    }
                    let current = w.rx.borrow_and_update().clone();
                    let snapshot = match &other_event {
                        None => current,
                        Some(id) => match board.of_event(id).await {
                            Ok(Some(snapshot)) => snapshot,
                            Ok(None) => return None,
                            Err(e) => {
                                w.done = true;
                                return Some((Err(from_storage(&e)), w));
                            }
                        },
                    };
                    let item = match page(&snapshot, 0, limit) {
                        Ok(board) => comparer
                            .compare(&snapshot, &baseline_request)
                            .await
                            .map(|compared| with_comparison(board, &compared)),
                        Err(status) => Err(status),
                    };
                    // A generation that moved nothing this page shows (only the breakdowns,
                    // which it does not carry) is not sent again, and does not hold the next
                    // real change back by the interval.
                    if let (Ok(page), Some(sent), Some(_)) = (&item, &w.sent, w.last)
                        && same_page(sent, page)
                    {
                        continue;
                    }
                    w.done = item.is_err();
                    w.last = Some(tokio::time::Instant::now());
                    w.sent = item.as_ref().ok().cloned();
                    return Some((item, w));
                }
            }
        });
        // The stream owns `watching`: counted out when the stream is dropped.
        let stream = futures::StreamExt::map(stream, move |item| {
            let _ = &watching;
            item
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_breakdown(
        &self,
        request: Request<GetBreakdownRequest>,
    ) -> Result<Response<Breakdown>, Status> {
        let metadata = request.metadata().clone().into_headers();
        let peer = request.remote_addr().map(|a| a.ip());
        let req = request.into_inner();
        let dimension = breakdown::dimension_of(req.dimension)?;
        let limit = limit_of(req.limit)?;
        let site = if req.site_id.is_empty() {
            None
        } else {
            let site = SiteId::parse(&req.site_id).map_err(|e| {
                invalid_field(
                    "site_id",
                    format!("{:?} {e}", saleboard_domain::ids::excerpt(&req.site_id)),
                )
            })?;
            self.may_read_detail(
                &metadata,
                peer,
                &site,
                "/saleboard.v1.LeaderboardService/GetBreakdown",
            )
            .await?;
            Some(site)
        };
        let (generation, offset) = if req.page_token.is_empty() {
            (None, 0)
        } else {
            let Some(PageToken {
                generation,
                offset,
                dimension: Some(of),
            }) = PageToken::parse(&req.page_token)
            else {
                return Err(invalid_field(
                    "page_token",
                    "is not a breakdown token this service issued",
                ));
            };
            if of != dimension {
                return Err(invalid_field(
                    "page_token",
                    format!("belongs to the {of} breakdown, not the {dimension} one"),
                ));
            }
            (Some(generation), offset)
        };
        let expired = || {
            Status::failed_precondition(
                "page_token expired: its figures are no longer kept; start again without page_token",
            )
        };
        let other = |what: &str| invalid_field("page_token", format!("belongs to another {what}"));
        let Some(site) = site else {
            let snapshot = match generation {
                None => self.snapshot_of(&req.event_id).await?,
                Some(g) => self.board.by_generation(g).ok_or_else(expired)?,
            };
            let (event_id, _) = snapshot.figures.event.as_ref().ok_or_else(no_event)?;
            if generation.is_some() && !req.event_id.is_empty() && req.event_id != *event_id {
                return Err(other("event"));
            }
            return Ok(Response::new(
                self.national_breakdown_page(&snapshot, dimension, offset, limit)?,
            ));
        };
        let kept = match generation {
            Some(g) => {
                let kept = self.board.site_breakdown(g).ok_or_else(expired)?;
                if kept.site_id != site {
                    return Err(other("site"));
                }
                if !req.event_id.is_empty() && req.event_id != kept.event_id {
                    return Err(other("event"));
                }
                kept
            }
            None => {
                if !req.event_id.is_empty() {
                    self.known_event(&req.event_id).await?;
                }
                let event = (!req.event_id.is_empty()).then_some(req.event_id.as_str());
                let data = self
                    .store
                    .site_breakdown(&site, event, dimension)
                    .await
                    .map_err(|e| from_storage(&e))?
                    .ok_or_else(|| {
                        Status::not_found(format!("site \"{site}\" is not registered"))
                    })?;
                let built = breakdown::SiteBreakdown::build(
                    self.board.next_generation(),
                    data,
                    dimension,
                    UnixNanos::now(),
                )
                .ok_or_else(no_event)?;
                let kept = Arc::new(built);
                self.board.keep_site_breakdown(kept.clone());
                kept
            }
        };
        let site_id = kept.site_id.to_string();
        let view = breakdown::View {
            generation: kept.generation,
            as_of: kept.as_of,
            event_id: &kept.event_id,
            site_id: &site_id,
            reporting: kept.reporting,
            state: kept.state,
            dimension,
            watermark: kept.watermark,
            stale: false,
            ranking: &kept.ranking,
        };
        Ok(Response::new(breakdown::page(&view, offset, limit)))
    }

    async fn get_site_totals(
        &self,
        request: Request<GetSiteTotalsRequest>,
    ) -> Result<Response<SiteTotals>, Status> {
        let metadata = request.metadata().clone().into_headers();
        let peer = request.remote_addr().map(|a| a.ip());
        let req = request.into_inner();
        let site = SiteId::parse(&req.site_id).map_err(|e| {
            invalid_field(
                "site_id",
                format!("{:?} {e}", saleboard_domain::ids::excerpt(&req.site_id)),
            )
        })?;
        if req.include_hourly {
            self.may_read_detail(
                &metadata,
                peer,
                &site,
                "/saleboard.v1.LeaderboardService/GetSiteTotals",
            )
            .await?;
        }
        if !req.include_hourly {
            // The snapshot's figures: the same as GetLeaderboard's, whether storage answers or
            // not.
            let snapshot = self.snapshot_of(&req.event_id).await?;
            // A closed event's snapshot keeps the sites of its final result: a site registered
            // since is in the current snapshot, with nothing in the closed event.
            let current = self.board.current();
            let (record, totals) = snapshot
                .figures
                .site(&site)
                .or_else(|| {
                    current
                        .figures
                        .site(&site)
                        .map(|(record, _)| (record, None))
                })
                .ok_or_else(|| Status::not_found(format!("site \"{site}\" is not registered")))?;
            return Ok(Response::new(SiteTotals {
                site_id: record.site_id.to_string(),
                display_name: record.display_name.clone(),
                totals: totals
                    .into_iter()
                    .flatten()
                    .map(|(c, t)| totals_msg(c.code(), t))
                    .collect(),
                hourly: Vec::new(),
                watermark: snapshot.figures.watermark,
                as_of: Some(timestamp(snapshot.as_of)),
                stale: snapshot.stale,
            }));
        }
        if !req.event_id.is_empty() {
            self.known_event(&req.event_id).await?;
        }
        let event = (!req.event_id.is_empty()).then_some(req.event_id.as_str());
        let data = self
            .store
            .site_totals(&site, event, true)
            .await
            .map_err(|e| from_storage(&e))?
            .ok_or_else(|| Status::not_found(format!("site \"{site}\" is not registered")))?;
        Ok(Response::new(SiteTotals {
            site_id: data.site.site_id.to_string(),
            display_name: data.site.display_name,
            totals: data
                .totals
                .iter()
                .map(|(c, t)| totals_msg(c.code(), t))
                .collect(),
            hourly: data
                .hourly
                .iter()
                .map(|(hour, c, h)| HourlyTotalsMsg {
                    hour_start: Some(timestamp(*hour)),
                    currency: c.code().to_owned(),
                    sale_count: h.sale_count,
                    net_minor: i64::try_from(h.net_minor).unwrap_or(0),
                    out_of_range: i64::try_from(h.net_minor).is_err(),
                    net_decimal: h.net_minor.to_string(),
                })
                .collect(),
            watermark: data.applied,
            as_of: Some(timestamp(UnixNanos::now())),
            stale: false,
        }))
    }

    async fn get_national_totals(
        &self,
        request: Request<GetNationalTotalsRequest>,
    ) -> Result<Response<NationalTotals>, Status> {
        let req = request.into_inner();
        let snapshot = self.snapshot_of(&req.event_id).await?;
        let f = &snapshot.figures;
        if f.event.is_none() {
            return Err(no_event());
        }
        let compared = self
            .comparer
            .compare(&snapshot, &req.baseline_event_id)
            .await?;
        let mut unconverted = codes(&f.unconverted_currencies());
        let baseline_net_reporting_minor = match &compared.baseline {
            Some(Ok(b)) => {
                unconverted.extend(b.unconverted.iter().map(|c| c.code().to_owned()));
                i64::try_from(b.national).unwrap_or(0)
            }
            Some(Err(currencies)) => {
                unconverted.extend(currencies.iter().map(|c| c.code().to_owned()));
                0
            }
            None => 0,
        };
        unconverted.sort();
        unconverted.dedup();
        let (
            net_reporting_minor,
            net_reporting_out_of_range,
            net_reporting_decimal,
            out_of_range_sites,
        ) = national_net(f);
        Ok(Response::new(NationalTotals {
            totals: f
                .national_totals
                .iter()
                .map(|(c, t)| totals_msg(c.code(), t))
                .collect(),
            net_reporting_minor,
            site_count: f.site_count,
            watermark: f.watermark,
            net_reporting_out_of_range,
            net_reporting_decimal,
            out_of_range_sites,
            event_id: f
                .event
                .as_ref()
                .map(|(id, _)| id.clone())
                .unwrap_or_default(),
            reporting_currency: f
                .event
                .as_ref()
                .map(|(_, c)| c.code().to_owned())
                .unwrap_or_default(),
            unconverted_currencies: unconverted,
            baseline_event_id: compared.baseline_event_id,
            baseline_net_reporting_minor,
            stale: snapshot.stale,
            as_of: Some(timestamp(snapshot.as_of)),
            hourly: national_hours(f),
        }))
    }
}
