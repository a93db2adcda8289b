//! `saleboard.v1.AdminService`: what organizers manage. Every request has passed the organizer
//! token check (a tower layer) before it gets here.

use std::collections::HashSet;
use std::sync::Arc;

use saleboard_domain::event::EventError;
use saleboard_domain::{Currency, Event, EventState, Rate, SiteId, UnixNanos};
use saleboard_proto::Timestamp;
use saleboard_proto::v1::admin_service_server::AdminService as AdminApi;
use saleboard_proto::v1::{
    ApiKey, CreateApiKeyRequest, CreateSiteRequest, Event as EventMsg, ExchangeRate,
    GetEventRequest, ListApiKeysRequest, ListApiKeysResponse, ListEventsRequest,
    ListEventsResponse, ListExchangeRatesRequest, ListExchangeRatesResponse, ListSitesRequest,
    ListSitesResponse, RevokeApiKeyRequest, RevokeApiKeyResponse, SetExchangeRatesRequest,
    SetExchangeRatesResponse, SetSiteEnabledRequest, Site,
};
use saleboard_runtime::auth::new_api_key;
use saleboard_runtime::status::{from_storage, invalid_field};
use saleboard_storage::{ApiKeyRecord, SiteRecord, Store};
use tonic::{Request, Response, Status};

use crate::board::Board;
use crate::messages::{event_msg, events_msg, timestamp};

/// Longest display name, in characters.
const MAX_DISPLAY_NAME: usize = 200;

/// The admin gRPC service.
#[derive(Clone)]
pub struct AdminService {
    store: Arc<dyn Store>,
    board: Arc<Board>,
    /// Sites and keys changed, in the log: bursts summed.
    changes: Arc<crate::changes::ChangeLog>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService").finish_non_exhaustive()
    }
}

impl AdminService {
    /// Rebuilds the leaderboard before answering, so a client that changed the event, a rate
    /// or the sites sees the change in its very next query.
    async fn refresh_board(&self) {
        self.board.forget_other_events();
        if let Err(e) = self.board.refresh().await {
            tracing::warn!(error = %e, "cannot refresh the leaderboard now; it will on its next signal");
            self.board.invalidate();
        }
    }

    /// The event named, or the current one when `event_id` is empty.
    async fn event_named(&self, event_id: &str, now: UnixNanos) -> Result<Event, Status> {
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        find_event(&events, event_id, now, || {
            Status::failed_precondition(
                "no event is configured; rates belong to an event: call SetEvent first",
            )
        })
        .cloned()
    }

    /// Currencies in the current totals that `rates` (of `event_id`) leave without a rate, by
    /// code; empty for an event that is not the one on the board.
    fn without_rate(&self, event_id: &str, rates: &[(Currency, Rate)]) -> Vec<String> {
        let board = self.board.current();
        if board.figures.event.as_ref().map(|(id, _)| id.as_str()) != Some(event_id) {
            return Vec::new();
        }
        board
            .figures
            .currencies_without_rate(rates)
            .iter()
            .map(|c| c.code().to_owned())
            .collect()
    }

    /// A service over `store` that tells `board` when the figures' inputs change.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, board: Arc<Board>) -> Self {
        Self {
            store,
            board,
            changes: crate::changes::ChangeLog::start(),
        }
    }
}

fn instant(field: &str, ts: Option<&Timestamp>) -> Result<UnixNanos, Status> {
    let ts = ts.ok_or_else(|| invalid_field(field, "is required"))?;
    UnixNanos::from_parts(ts.seconds, ts.nanos)
        .ok_or_else(|| invalid_field(field, "is not a valid timestamp between 1678 and 2262"))
}

fn site_msg(s: SiteRecord) -> Site {
    Site {
        site_id: s.site_id.to_string(),
        display_name: s.display_name,
        created_at: Some(timestamp(s.created_at)),
        disabled: s.disabled_at.is_some(),
        disabled_at: s.disabled_at.map(timestamp),
    }
}

fn key_msg(k: ApiKeyRecord, secret: String) -> ApiKey {
    ApiKey {
        key_id: k.key_id,
        site_id: k.site_id.to_string(),
        secret,
        created_at: Some(timestamp(k.created_at)),
        revoked_at: k.revoked_at.map(timestamp),
    }
}

/// Every event as stored, newest first.
///
/// # Errors
/// When storage fails.
pub async fn list_events(store: &dyn Store) -> Result<ListEventsResponse, Status> {
    let events = store.events().await.map_err(|e| from_storage(&e))?;
    Ok(events_msg(&events, UnixNanos::now()))
}

/// The event named (NOT_FOUND when there is none), or the current one when `event_id` is
/// empty (`none` when no event is configured).
fn find_event<'a>(
    events: &'a saleboard_domain::Events,
    event_id: &str,
    now: UnixNanos,
    none: impl FnOnce() -> Status,
) -> Result<&'a Event, Status> {
    if event_id.is_empty() {
        return events.current(now).ok_or_else(none);
    }
    events.get(event_id).ok_or_else(|| {
        Status::not_found(format!(
            "event {:?} does not exist",
            saleboard_domain::ids::excerpt(event_id)
        ))
    })
}

/// Whether the time zone database knows an IANA name.
fn known_time_zone(name: &str) -> bool {
    jiff::tz::TimeZone::get(name).is_ok()
}

fn rate_msgs(rates: Vec<(Currency, Rate)>) -> Vec<ExchangeRate> {
    rates
        .into_iter()
        .map(|(c, r)| ExchangeRate {
            currency: c.code().to_owned(),
            rate: r.to_string(),
        })
        .collect()
}

fn site_id(field: &str, value: &str) -> Result<SiteId, Status> {
    SiteId::parse(value).map_err(|e| invalid_field(field, format!("{value:?} {e}")))
}

#[tonic::async_trait]
impl AdminApi for AdminService {
    async fn create_site(
        &self,
        request: Request<CreateSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let req = request.into_inner();
        let site = site_id("site_id", &req.site_id)?;
        let name = req.display_name.trim();
        if name.chars().count() > MAX_DISPLAY_NAME {
            return Err(invalid_field(
                "display_name",
                format!("is longer than {MAX_DISPLAY_NAME} characters"),
            ));
        }
        let name = if name.is_empty() { site.as_str() } else { name };
        let record = self
            .store
            .create_site(&site, name, UnixNanos::now())
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes.record("site created", site.as_str());
        self.refresh_board().await;
        Ok(Response::new(site_msg(record)))
    }

    async fn set_site_enabled(
        &self,
        request: Request<SetSiteEnabledRequest>,
    ) -> Result<Response<Site>, Status> {
        let req = request.into_inner();
        let site = site_id("site_id", &req.site_id)?;
        let record = self
            .store
            .set_site_enabled(&site, req.enabled, UnixNanos::now())
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes.record(
            if req.enabled {
                "site enabled"
            } else {
                "site disabled"
            },
            site.as_str(),
        );
        // Read-your-writes needs a refresh only when the board does not show the site as
        // stored already: enabling a site that is enabled (a load generator's set-up
        // re-enables each of its sites) costs no rebuild of the board.
        if !self
            .board
            .shows_site(&site, record.disabled_at.is_none())
            .await
        {
            self.refresh_board().await;
        }
        Ok(Response::new(site_msg(record)))
    }

    async fn list_sites(
        &self,
        _: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        let sites = self
            .store
            .list_sites()
            .await
            .map_err(|e| from_storage(&e))?;
        Ok(Response::new(ListSitesResponse {
            sites: sites.into_iter().map(site_msg).collect(),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<ApiKey>, Status> {
        let site = site_id("site_id", &request.into_inner().site_id)?;
        let key = new_api_key().map_err(|e| {
            tracing::error!(error = %e, "no randomness for a new key");
            Status::internal("cannot generate a key right now")
        })?;
        let record = self
            .store
            .create_api_key(&key.key_id, &site, &key.secret_hash, UnixNanos::now())
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes
            .record("API key created", &format!("{} of {site}", key.key_id));
        Ok(Response::new(key_msg(record, key.secret)))
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        let key_id = request.into_inner().key_id;
        if key_id.is_empty() {
            return Err(invalid_field("key_id", "is required"));
        }
        let record = self
            .store
            .revoke_api_key(&key_id, UnixNanos::now())
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes.record("API key revoked", &key_id);
        Ok(Response::new(RevokeApiKeyResponse {
            key: Some(key_msg(record, String::new())),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let req = request.into_inner();
        let site = if req.site_id.is_empty() {
            None
        } else {
            Some(site_id("site_id", &req.site_id)?)
        };
        let keys = self
            .store
            .list_api_keys(site.as_ref())
            .await
            .map_err(|e| from_storage(&e))?;
        Ok(Response::new(ListApiKeysResponse {
            keys: keys
                .into_iter()
                .map(|k| key_msg(k, String::new()))
                .collect(),
        }))
    }

    async fn set_event(&self, request: Request<EventMsg>) -> Result<Response<EventMsg>, Status> {
        let req = request.into_inner();
        let starts = instant("starts_at", req.starts_at.as_ref())?;
        let ends = instant("ends_at", req.ends_at.as_ref())?;
        let invalid = |e: EventError| invalid_field(e.field(), e.to_string());
        let mut event = Event::new(
            &req.event_id,
            req.display_name.trim(),
            starts,
            ends,
            &req.reporting_currency,
        )
        .and_then(|e| e.compared_with(req.baseline_event_id.trim()))
        .map_err(invalid)?;
        let time_zone = req.time_zone.trim();
        if !time_zone.is_empty() && !known_time_zone(time_zone) {
            return Err(invalid_field(
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone such as Asia/Jakarta",
                    saleboard_domain::ids::excerpt(time_zone)
                ),
            ));
        }
        event = event.shown_in(time_zone);
        let stored = self.store.events().await.map_err(|e| from_storage(&e))?;
        // closes_at unset: the stored one when it still follows the window, else the default.
        let closes_at = match req.closes_at.as_ref() {
            Some(ts) => Some(instant("closes_at", Some(ts))?),
            None => stored
                .get(&event.event_id)
                .map(|s| s.closes_at)
                .filter(|c| *c >= event.ends_at),
        };
        if let Some(closes_at) = closes_at {
            event = event.closing_at(closes_at).map_err(invalid)?;
        }
        let now = UnixNanos::now();
        self.store
            .set_event(&event, now)
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(event_id = %event.event_id, "event set");
        self.refresh_board().await;
        Ok(Response::new(event_msg(&event, now)))
    }

    async fn get_event(
        &self,
        request: Request<GetEventRequest>,
    ) -> Result<Response<EventMsg>, Status> {
        let wanted = request.into_inner().event_id;
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        let now = UnixNanos::now();
        let event = find_event(&events, &wanted, now, || {
            Status::not_found("no event is configured yet; call SetEvent")
        })?;
        Ok(Response::new(event_msg(event, now)))
    }

    async fn list_events(
        &self,
        _: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        Ok(Response::new(list_events(self.store.as_ref()).await?))
    }

    async fn set_exchange_rates(
        &self,
        request: Request<SetExchangeRatesRequest>,
    ) -> Result<Response<SetExchangeRatesResponse>, Status> {
        let req = request.into_inner();
        let mut seen = HashSet::new();
        let mut rates = Vec::with_capacity(req.rates.len());
        for (i, r) in req.rates.iter().enumerate() {
            let currency = Currency::parse(&r.currency)
                .map_err(|e| invalid_field(&format!("rates[{i}].currency"), e.to_string()))?;
            if !seen.insert(currency) {
                return Err(invalid_field(
                    &format!("rates[{i}].currency"),
                    format!("{currency} appears more than once"),
                ));
            }
            let rate = Rate::parse_bounded(&r.rate)
                .map_err(|e| invalid_field(&format!("rates[{i}].rate"), e.to_string()))?;
            rates.push((currency, rate));
        }
        let now = UnixNanos::now();
        let event = self.event_named(&req.event_id, now).await?;
        if event.state(now) == EventState::Closed {
            return Err(Status::failed_precondition(format!(
                "event {:?} closed at {}: its rates are frozen",
                event.event_id,
                event.closes_at.to_rfc3339()
            )));
        }
        let all = self
            .store
            .set_exchange_rates(&event.event_id, &rates)
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(changed = rates.len(), "exchange rates set");
        self.refresh_board().await;
        Ok(Response::new(SetExchangeRatesResponse {
            currencies_without_rate: self.without_rate(&event.event_id, &all),
            rates: rate_msgs(all),
        }))
    }

    async fn list_exchange_rates(
        &self,
        request: Request<ListExchangeRatesRequest>,
    ) -> Result<Response<ListExchangeRatesResponse>, Status> {
        let event_id = request.into_inner().event_id;
        let event = self.event_named(&event_id, UnixNanos::now()).await?;
        let all = self
            .store
            .list_exchange_rates(&event.event_id)
            .await
            .map_err(|e| from_storage(&e))?;
        Ok(Response::new(ListExchangeRatesResponse {
            currencies_without_rate: self.without_rate(&event.event_id, &all),
            rates: rate_msgs(all),
        }))
    }
}
