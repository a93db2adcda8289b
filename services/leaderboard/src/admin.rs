//! `saleboard.v1.AdminService`: what organizers manage. Every request has passed the organizer
//! check (a tower layer: the token from configuration, `bootstrap`, or a named organizer's own
//! secret) before it gets here, with the [`Organizer`] in its extensions.
//!
//! Every call that changes anything is recorded in the audit log: its [`AuditCall`] (who,
//! which method, the request as proto3 JSON without secrets) goes into the storage write of
//! the change, which appends the entry in the same transaction; a refused call (any status but
//! OK) is recorded on its own by [`AdminService::finish`]. Reads are not recorded.

use std::collections::HashSet;
use std::sync::Arc;

use saleboard_domain::action::{ActionKind, ActionState, MAX_REASON};
use saleboard_domain::audit::{BOOTSTRAP, OrganizerName};
use saleboard_domain::event::EventError;
use saleboard_domain::page::PageToken;
use saleboard_domain::{Currency, Event, EventState, Rate, SiteId, UnixNanos};
use saleboard_proto::Timestamp;
use saleboard_proto::json::JsonMessage;
use saleboard_proto::v1::admin_service_server::AdminService as AdminApi;
use saleboard_proto::v1::{
    ActionKind as ActionKindMsg, ActionState as ActionStateMsg, AdjustTransactionsRequest,
    AdminAction, ApiKey, ApproveActionRequest, AuditEntry as AuditEntryMsg,
    BacktestIntegrityRequest, CreateApiKeyRequest, CreateOrganizerRequest, CreateSiteRequest,
    Event as EventMsg, EventReport, ExchangeRate, FlagState as FlagStateMsg, GetEventReportRequest,
    GetEventRequest, GetIntegrityFlagRequest, GetIntegrityPolicyRequest, IntegrityBacktest,
    IntegrityFlag, IntegrityInput, IntegrityPolicy, IntegrityRule, IntegritySample,
    ListActionsRequest, ListActionsResponse, ListApiKeysRequest, ListApiKeysResponse,
    ListAuditLogRequest, ListAuditLogResponse, ListEventsRequest, ListEventsResponse,
    ListExchangeRatesRequest, ListExchangeRatesResponse, ListIntegrityFlagsRequest,
    ListIntegrityFlagsResponse, ListOrganizersRequest, ListOrganizersResponse, ListSitesRequest,
    ListSitesResponse, Organizer as OrganizerMsg, RejectActionRequest, ReviewIntegrityFlagRequest,
    RevokeApiKeyRequest, RevokeApiKeyResponse, RevokeOrganizerRequest, RuleBacktest,
    SampleIntegrityFlagRequest, SetExchangeRatesRequest, SetExchangeRatesResponse,
    SetSiteEnabledRequest, SetSiteHoldRequest, Severity as SeverityMsg, Site,
};
use saleboard_runtime::auth::{Organizer, new_action_id, new_api_key, new_organizer_secret};
use saleboard_runtime::status::{code_name, from_storage, invalid_field};
use saleboard_storage::{
    ActionDecision, ActionRecord, ApiKeyRecord, Audit, AuditCall, AuditEntry, AuditQuery,
    FlagRecord, FlagReview, OrganizerRecord, PolicyRecord, SiteRecord, Store,
};
use tonic::{Request, Response, Status};

use crate::board::Board;
use crate::messages::{event_msg, events_msg, timestamp};

/// Longest display name, in characters.
const MAX_DISPLAY_NAME: usize = 200;

/// Audit entries per page when `limit` is 0.
const DEFAULT_AUDIT_LIMIT: u32 = 100;
/// Most audit entries per page.
const MAX_AUDIT_LIMIT: u32 = 1_000;

/// The admin gRPC service.
#[derive(Clone)]
pub struct AdminService {
    store: Arc<dyn Store>,
    board: Arc<Board>,
    /// Sites and keys changed, in the log: bursts summed.
    changes: Arc<crate::changes::ChangeLog>,
    /// The official reports (shared with the public page).
    reports: Arc<crate::report::Reports>,
    /// How long `GetEventReport` waits for a report being made before it answers UNAVAILABLE
    /// with the progress (under the server's request timeout).
    report_wait: std::time::Duration,
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

    /// The audit record of a call about to be handled: its organizer (from the auth layer),
    /// method and request. Names the organizer in the call's span.
    fn call<M: JsonMessage>(request: &Request<M>, rpc: &str) -> Result<AuditCall, Status> {
        let organizer = request
            .extensions()
            .get::<Organizer>()
            .ok_or_else(|| Status::unauthenticated("no organizer authenticated this call"))?;
        tracing::Span::current().record("organizer", organizer.name());
        let request_json = saleboard_proto::json::to_string_without_secrets(request.get_ref())
            .unwrap_or_else(|e| {
                // Only a timestamp outside the years 1 to 9999; the call is refused for it.
                serde_json::json!({ "unwritable": e.to_string() }).to_string()
            });
        Ok(AuditCall {
            at: UnixNanos::now(),
            organizer: organizer.name().to_owned(),
            rpc: rpc.to_owned(),
            request_json,
        })
    }

    /// Ends a call that may change something: a refusal is recorded in the audit log on its
    /// own (the change's transaction, if any, rolled back); a success was recorded with its
    /// change. Either way the organizer is in the log line.
    async fn finish<T>(
        &self,
        call: &AuditCall,
        result: Result<Response<T>, Status>,
    ) -> Result<Response<T>, Status> {
        match result {
            Ok(response) => {
                tracing::debug!(organizer = %call.organizer, rpc = %call.rpc, "admin change");
                Ok(response)
            }
            Err(status) => {
                let outcome = format!("{} {}", code_name(status.code()), status.message());
                match self.store.record_refusal(call, &outcome).await {
                    Ok(entry) => tracing::info!(
                        organizer = %call.organizer,
                        rpc = %call.rpc,
                        code = code_name(status.code()),
                        position = entry.position,
                        "admin call refused"
                    ),
                    Err(e) => tracing::warn!(
                        organizer = %call.organizer,
                        rpc = %call.rpc,
                        code = code_name(status.code()),
                        error = %e,
                        "admin call refused, and its refusal cannot be recorded in the audit log"
                    ),
                }
                Err(status)
            }
        }
    }

    /// A service over `store` that tells `board` when the figures' inputs change.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        board: Arc<Board>,
        reports: Arc<crate::report::Reports>,
        report_wait: std::time::Duration,
    ) -> Self {
        Self {
            store,
            board,
            changes: crate::changes::ChangeLog::start(),
            reports,
            report_wait,
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

/// The outcome of a call that produced `resource`: `OK` and the resource in the proto3 JSON
/// mapping without its secrets.
pub(crate) fn ok_outcome<M: JsonMessage>(resource: &M) -> String {
    match saleboard_proto::json::to_string_without_secrets(resource) {
        Ok(json) => format!("OK {json}"),
        Err(e) => format!("OK (the resource is not writable as JSON: {e})"),
    }
}

fn organizer_msg(o: OrganizerRecord, secret: String) -> OrganizerMsg {
    OrganizerMsg {
        name: o.name,
        secret,
        created_at: Some(timestamp(o.created_at)),
        created_by: o.created_by,
        revoked_at: o.revoked_at.map(timestamp),
    }
}

fn entry_msg(e: AuditEntry) -> AuditEntryMsg {
    AuditEntryMsg {
        position: e.position,
        at: Some(timestamp(e.at)),
        organizer: e.organizer,
        rpc: e.rpc,
        request_json: e.request_json,
        outcome: e.outcome,
        prev_sha256: e.prev_sha256,
        sha256: e.sha256,
    }
}

fn organizer_name(value: &str) -> Result<OrganizerName, Status> {
    OrganizerName::parse(value).map_err(|e| {
        invalid_field(
            "name",
            format!("{:?} {e}", saleboard_domain::ids::excerpt(value)),
        )
    })
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
/// The metadata key of a report's progress (`read/of` ledger positions) on an UNAVAILABLE
/// answer of `GetEventReport` while it is being made: the CLI shows it and asks again.
pub const REPORT_PROGRESS: &str = "saleboard-report-progress";

/// A report's failure as a status.
pub(crate) fn report_status(e: &crate::report::ReportError) -> Status {
    use crate::report::ReportError;
    match e {
        ReportError::NotFound(m) => Status::not_found(m.clone()),
        ReportError::Storage(e) => from_storage(e),
        ReportError::Fold(m) => Status::internal(m.clone()),
        ReportError::Failed(_) => Status::unavailable(e.to_string()),
        ReportError::Busy { read, of, .. } | ReportError::InProgress { read, of } => {
            let mut status = Status::unavailable(e.to_string());
            if let Ok(value) = format!("{read}/{of}").parse() {
                status.metadata_mut().insert(REPORT_PROGRESS, value);
            }
            status
        }
    }
}

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

/// An action as the contract states it.
pub(crate) fn action_msg(a: ActionRecord) -> AdminAction {
    let (approved_by, rejected_by) = match (a.state, a.decided_by) {
        (ActionState::Applied, Some(by)) => (by, String::new()),
        (ActionState::Rejected, Some(by)) => (String::new(), by),
        _ => (String::new(), String::new()),
    };
    AdminAction {
        action_id: a.action_id,
        kind: match a.kind {
            ActionKind::Hold => ActionKindMsg::Hold,
            ActionKind::Release => ActionKindMsg::Release,
            ActionKind::Adjust => ActionKindMsg::Adjust,
        }
        .into(),
        state: match a.state {
            ActionState::Pending => ActionStateMsg::Pending,
            ActionState::Applied => ActionStateMsg::Applied,
            ActionState::Rejected => ActionStateMsg::Rejected,
        }
        .into(),
        proposed_by: a.proposed_by,
        approved_by,
        reason: a.reason,
        event_id: a.event_id,
        site_id: a.site_id.to_string(),
        proposed_at: Some(timestamp(a.proposed_at)),
        decided_at: a.decided_at.map(timestamp),
        rejected_by,
        decision_note: a.decision_note,
        transaction_ids: a.adjustment.transaction_ids,
        flag_id: a.adjustment.flag_id,
        voided_rows: a.adjustment.voided_rows,
        through_position: a.adjustment.through_position,
    }
}

/// The policy in force as the contract answers it, from what was stored.
fn policy_answer(record: &PolicyRecord) -> Result<IntegrityPolicy, Status> {
    let mut set: IntegrityPolicy = saleboard_proto::json::from_str(&record.overrides_json)
        .map_err(|e| {
            tracing::error!(error = %e, event = %record.event_id, "a stored integrity policy does not read");
            Status::internal("the stored integrity policy does not read; the operators have it in their logs")
        })?;
    let policy = crate::policy::from_message(&set).map_err(|e| {
        tracing::error!(error = %e.message(), event = %record.event_id, "a stored integrity policy is out of range");
        Status::internal("the stored integrity policy is out of range; set it again")
    })?;
    set.updated_at = Some(timestamp(record.updated_at));
    set.updated_by.clone_from(&record.updated_by);
    Ok(crate::policy::to_message(&record.event_id, &set, &policy))
}

/// A flag as the contract states it.
/// A rule as the contract names it.
pub(crate) fn rule_msg(rule: saleboard_domain::integrity::Rule) -> IntegrityRule {
    use saleboard_domain::integrity::Rule as R;
    match rule {
        R::LateRefunds => IntegrityRule::LateRefunds,
        R::RefundRate => IntegrityRule::RefundRate,
        R::LateSales => IntegrityRule::LateSales,
        R::SettlementRank => IntegrityRule::SettlementRank,
        R::HourShape => IntegrityRule::HourShape,
        R::Burst => IntegrityRule::Burst,
        R::Growth => IntegrityRule::Growth,
        R::StoreConcentration => IntegrityRule::StoreConcentration,
        R::AmountPattern => IntegrityRule::AmountPattern,
    }
}

/// A severity as the contract names it.
fn severity_msg(severity: saleboard_domain::integrity::Severity) -> SeverityMsg {
    use saleboard_domain::integrity::Severity as V;
    match severity {
        V::Low => SeverityMsg::Low,
        V::Medium => SeverityMsg::Medium,
        V::High => SeverityMsg::High,
    }
}

/// A backtest as the contract states it.
fn backtest_msg(
    event_id: String,
    (watermark, sites, rules, undecided): (u64, u32, Vec<crate::integrity::RuleBacktest>, u32),
) -> IntegrityBacktest {
    let decimal = |r: saleboard_domain::integrity::Ratio| {
        r.exact_decimal().unwrap_or_else(|| r.to_decimal(18))
    };
    IntegrityBacktest {
        event_id,
        watermark,
        sites,
        undecided_sites: undecided,
        rules: rules
            .into_iter()
            .map(|r| RuleBacktest {
                rule: rule_msg(r.rule).into(),
                severity: severity_msg(r.rule.severity()).into(),
                evaluated: r.not_evaluated.is_none(),
                not_evaluated_reason: r.not_evaluated.unwrap_or_default().to_owned(),
                statistic: crate::integrity::statistic_of(r.rule).to_owned(),
                sites: r.sites,
                raised: r.raised,
                p99_decimal: r.p99_max.map(|(p, _)| decimal(p)).unwrap_or_default(),
                max_decimal: r.p99_max.map(|(_, m)| decimal(m)).unwrap_or_default(),
            })
            .collect(),
    }
}

fn flag_msg(f: FlagRecord) -> IntegrityFlag {
    let rule = rule_msg(f.rule);
    let severity = severity_msg(f.severity);
    let inputs: Vec<(String, String)> = serde_json::from_str(&f.inputs_json).unwrap_or_default();
    IntegrityFlag {
        flag_id: f.flag_id,
        event_id: f.event_id,
        site_id: f.site_id.to_string(),
        rule: rule.into(),
        severity: severity.into(),
        state: flag_state_msg(f.state).into(),
        statistic_decimal: f.statistic,
        threshold_decimal: f.threshold,
        national_decimal: f.national,
        watermark: f.watermark,
        raised_at: Some(timestamp(f.raised_at)),
        cleared_at_watermark: f.cleared_at_watermark.unwrap_or(0),
        reviewed_by: f.reviewed_by.unwrap_or_default(),
        note: f.note,
        reviewed_at: f.reviewed_at.map(timestamp),
        rule_version: f.rule_version,
        sample_seed: f.sample_seed,
        inputs: inputs
            .into_iter()
            .map(|(name, value_decimal)| IntegrityInput {
                name,
                value_decimal,
            })
            .collect(),
    }
}

pub(crate) fn flag_state_msg(state: saleboard_domain::integrity::FlagState) -> FlagStateMsg {
    use saleboard_domain::integrity::FlagState as S;
    match state {
        S::Open => FlagStateMsg::Open,
        S::UnderReview => FlagStateMsg::UnderReview,
        S::Cleared => FlagStateMsg::Cleared,
        S::Confirmed => FlagStateMsg::Confirmed,
    }
}

/// The domain's state of a request's `state` field (`None` for UNSPECIFIED).
fn flag_state(
    field: &str,
    value: i32,
) -> Result<Option<saleboard_domain::integrity::FlagState>, Status> {
    use saleboard_domain::integrity::FlagState as S;
    match FlagStateMsg::try_from(value) {
        Ok(FlagStateMsg::Unspecified) => Ok(None),
        Ok(FlagStateMsg::Open) => Ok(Some(S::Open)),
        Ok(FlagStateMsg::UnderReview) => Ok(Some(S::UnderReview)),
        Ok(FlagStateMsg::Cleared) => Ok(Some(S::Cleared)),
        Ok(FlagStateMsg::Confirmed) => Ok(Some(S::Confirmed)),
        Err(_) => Err(invalid_field(field, format!("{value} is not a FlagState"))),
    }
}

/// A reason or note of at most [`MAX_REASON`] characters.
/// A proposal's reason: required (say `what`), at most 1,000 characters, trimmed.
fn required_reason<'a>(reason: &'a str, what: &str) -> Result<&'a str, Status> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(invalid_field(
            "reason",
            format!(
                "is required: say {what} (the approving organizer reads it, and the audit log \
                 keeps it)"
            ),
        ));
    }
    bounded_text("reason", reason)?;
    Ok(reason)
}

fn bounded_text(field: &str, text: &str) -> Result<(), Status> {
    let n = text.chars().count();
    if n > MAX_REASON {
        return Err(invalid_field(
            field,
            format!("is {n} characters; at most {MAX_REASON}"),
        ));
    }
    Ok(())
}

fn site_id(field: &str, value: &str) -> Result<SiteId, Status> {
    SiteId::parse(value).map_err(|e| invalid_field(field, format!("{value:?} {e}")))
}

impl AdminService {
    async fn create_site_in(
        &self,
        call: &AuditCall,
        req: CreateSiteRequest,
    ) -> Result<Site, Status> {
        let site = site_id("site_id", &req.site_id)?;
        let name = req.display_name.trim();
        if name.chars().count() > MAX_DISPLAY_NAME {
            return Err(invalid_field(
                "display_name",
                format!("is longer than {MAX_DISPLAY_NAME} characters"),
            ));
        }
        let name = if name.is_empty() { site.as_str() } else { name };
        let outcome = |r: &SiteRecord| ok_outcome(&site_msg(r.clone()));
        let record = self
            .store
            .create_site(&site, name, call.at, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes
            .record("site created", &format!("{site} by {}", call.organizer));
        self.refresh_board().await;
        Ok(site_msg(record))
    }

    async fn set_site_enabled_in(
        &self,
        call: &AuditCall,
        req: SetSiteEnabledRequest,
    ) -> Result<Site, Status> {
        let site = site_id("site_id", &req.site_id)?;
        let outcome = |r: &SiteRecord| ok_outcome(&site_msg(r.clone()));
        let record = self
            .store
            .set_site_enabled(&site, req.enabled, call.at, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes.record(
            if req.enabled {
                "site enabled"
            } else {
                "site disabled"
            },
            &format!("{site} by {}", call.organizer),
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
        Ok(site_msg(record))
    }

    async fn create_api_key_in(
        &self,
        call: &AuditCall,
        req: CreateApiKeyRequest,
    ) -> Result<ApiKey, Status> {
        let site = site_id("site_id", &req.site_id)?;
        let key = new_api_key().map_err(|e| {
            tracing::error!(error = %e, "no randomness for a new key");
            Status::internal("cannot generate a key right now")
        })?;
        // The resource without its secret: the secret is only in the answer.
        let outcome = |r: &ApiKeyRecord| ok_outcome(&key_msg(r.clone(), String::new()));
        let record = self
            .store
            .create_api_key(
                &key.key_id,
                &site,
                &key.secret_hash,
                call.at,
                Audit::new(call, &outcome),
            )
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes.record(
            "API key created",
            &format!("{} of {site} by {}", key.key_id, call.organizer),
        );
        Ok(key_msg(record, key.secret))
    }

    async fn revoke_api_key_in(
        &self,
        call: &AuditCall,
        req: RevokeApiKeyRequest,
    ) -> Result<RevokeApiKeyResponse, Status> {
        let key_id = req.key_id;
        if key_id.is_empty() {
            return Err(invalid_field("key_id", "is required"));
        }
        let outcome = |r: &ApiKeyRecord| {
            ok_outcome(&RevokeApiKeyResponse {
                key: Some(key_msg(r.clone(), String::new())),
            })
        };
        let record = self
            .store
            .revoke_api_key(&key_id, call.at, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        self.changes.record(
            "API key revoked",
            &format!("{key_id} by {}", call.organizer),
        );
        Ok(RevokeApiKeyResponse {
            key: Some(key_msg(record, String::new())),
        })
    }

    async fn set_event_in(&self, call: &AuditCall, req: EventMsg) -> Result<EventMsg, Status> {
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
        let now = call.at;
        let answer = event_msg(&event, now);
        let outcome = |_: &()| ok_outcome(&answer);
        self.store
            .set_event(&event, now, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(event_id = %event.event_id, organizer = %call.organizer, "event set");
        self.refresh_board().await;
        Ok(answer)
    }

    async fn set_exchange_rates_in(
        &self,
        call: &AuditCall,
        req: SetExchangeRatesRequest,
    ) -> Result<SetExchangeRatesResponse, Status> {
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
        let now = call.at;
        let event = self.event_named(&req.event_id, now).await?;
        if event.state(now) == EventState::Closed {
            return Err(Status::failed_precondition(format!(
                "event {:?} closed at {}: its rates are frozen",
                event.event_id,
                event.closes_at.to_rfc3339()
            )));
        }
        let answer = |all: &[(Currency, Rate)]| SetExchangeRatesResponse {
            currencies_without_rate: self.without_rate(&event.event_id, all),
            rates: rate_msgs(all.to_vec()),
        };
        let outcome = |all: &Vec<(Currency, Rate)>| ok_outcome(&answer(all.as_slice()));
        let all = self
            .store
            .set_exchange_rates(&event.event_id, &rates, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(changed = rates.len(), organizer = %call.organizer, "exchange rates set");
        self.refresh_board().await;
        Ok(answer(all.as_slice()))
    }

    async fn create_organizer_in(
        &self,
        call: &AuditCall,
        req: CreateOrganizerRequest,
    ) -> Result<OrganizerMsg, Status> {
        let name = organizer_name(&req.name)?;
        if name.is_bootstrap() {
            return Err(Status::already_exists(format!(
                "organizer {BOOTSTRAP:?} already exists: it is the organizer token from \
                 configuration"
            )));
        }
        let (secret, secret_hash) = new_organizer_secret().map_err(|e| {
            tracing::error!(error = %e, "no randomness for a new organizer secret");
            Status::internal("cannot generate a secret right now")
        })?;
        // The resource without its secret: the secret is only in the answer.
        let outcome = |r: &OrganizerRecord| ok_outcome(&organizer_msg(r.clone(), String::new()));
        let record = self
            .store
            .create_organizer(
                name.as_str(),
                &secret_hash,
                call.at,
                Audit::new(call, &outcome),
            )
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(name = %name, organizer = %call.organizer, "organizer created");
        Ok(organizer_msg(record, secret))
    }

    async fn revoke_organizer_in(
        &self,
        call: &AuditCall,
        req: RevokeOrganizerRequest,
    ) -> Result<OrganizerMsg, Status> {
        let name = organizer_name(&req.name)?;
        if name.is_bootstrap() {
            return Err(Status::permission_denied(format!(
                "organizer {BOOTSTRAP:?} is the organizer token from configuration and cannot \
                 be revoked here: replace the token in the configuration (--organizer-token / \
                 SALEBOARD_ORGANIZER_TOKEN) and restart"
            )));
        }
        let outcome = |r: &OrganizerRecord| ok_outcome(&organizer_msg(r.clone(), String::new()));
        let record = self
            .store
            .revoke_organizer(name.as_str(), call.at, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(name = %name, organizer = %call.organizer, "organizer revoked");
        Ok(organizer_msg(record, String::new()))
    }

    async fn set_site_hold_in(
        &self,
        call: &AuditCall,
        req: SetSiteHoldRequest,
    ) -> Result<AdminAction, Status> {
        let site = site_id("site_id", &req.site_id)?;
        let reason = required_reason(&req.reason, "why")?;
        self.propose(
            call,
            &req.event_id,
            site,
            ActionKind::for_held(req.held),
            reason,
            saleboard_storage::Adjustment::default(),
        )
        .await
    }

    async fn adjust_transactions_in(
        &self,
        call: &AuditCall,
        req: AdjustTransactionsRequest,
    ) -> Result<AdminAction, Status> {
        let site = site_id("site_id", &req.site_id)?;
        let reason = required_reason(&req.reason, "why these transactions are invalid")?;
        saleboard_domain::adjust::parse_ids(&req.transaction_ids).map_err(|e| {
            let field = e.index().map_or_else(
                || "transaction_ids".to_owned(),
                |i| format!("transaction_ids[{i}]"),
            );
            invalid_field(&field, e.to_string())
        })?;
        let flag_id = req.flag_id.trim();
        if !flag_id.is_empty() {
            let flag = self
                .store
                .flag(flag_id)
                .await
                .map_err(|e| from_storage(&e))?
                .ok_or_else(|| Status::not_found(format!("flag_id {flag_id:?}: no such flag")))?;
            if flag.site_id != site || (!req.event_id.is_empty() && flag.event_id != req.event_id) {
                return Err(invalid_field(
                    "flag_id",
                    format!(
                        "{flag_id:?} is a flag of site {:?} in event {:?}, not of this adjustment",
                        flag.site_id.as_str(),
                        flag.event_id
                    ),
                ));
            }
        }
        self.propose(
            call,
            &req.event_id,
            site,
            ActionKind::Adjust,
            reason,
            saleboard_storage::Adjustment {
                transaction_ids: req.transaction_ids,
                flag_id: flag_id.to_owned(),
                ..saleboard_storage::Adjustment::default()
            },
        )
        .await
    }

    /// Stores a proposal of `kind` on `site` in the event named (empty: the current one), for
    /// a second organizer to decide.
    async fn propose(
        &self,
        call: &AuditCall,
        event_id: &str,
        site: SiteId,
        kind: ActionKind,
        reason: &str,
        adjustment: saleboard_storage::Adjustment,
    ) -> Result<AdminAction, Status> {
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        let event = find_event(&events, event_id, call.at, || {
            Status::failed_precondition(
                "no event is configured; an action belongs to an event: call SetEvent first",
            )
        })?;
        if !adjustment.flag_id.is_empty() {
            // The flag named must be of this event too (the current one, when none was named).
            let flag = self
                .store
                .flag(&adjustment.flag_id)
                .await
                .map_err(|e| from_storage(&e))?;
            if let Some(flag) = flag
                && flag.event_id != event.event_id
            {
                return Err(invalid_field(
                    "flag_id",
                    format!(
                        "{:?} is a flag of event {:?}, not of {:?}",
                        adjustment.flag_id, flag.event_id, event.event_id
                    ),
                ));
            }
        }
        let action_id = new_action_id().map_err(|e| {
            tracing::error!(error = %e, "no randomness for a new action id");
            Status::internal("cannot generate an action id right now")
        })?;
        let proposal = ActionRecord {
            action_id,
            kind,
            state: ActionState::Pending,
            event_id: event.event_id.clone(),
            site_id: site,
            reason: reason.to_owned(),
            proposed_by: call.organizer.clone(),
            proposed_at: call.at,
            decided_by: None,
            decided_at: None,
            decision_note: String::new(),
            adjustment,
        };
        let outcome = |r: &ActionRecord| ok_outcome(&action_msg(r.clone()));
        let record = self
            .store
            .propose_action(&proposal, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(
            action = %record.action_id,
            kind = record.kind.as_str(),
            site = %record.site_id,
            event = %record.event_id,
            organizer = %call.organizer,
            "action proposed; another organizer must approve it"
        );
        Ok(action_msg(record))
    }

    async fn set_integrity_policy_in(
        &self,
        call: &AuditCall,
        req: IntegrityPolicy,
    ) -> Result<IntegrityPolicy, Status> {
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        let event = find_event(&events, &req.event_id, call.at, || {
            Status::failed_precondition(
                "no event is configured; a policy belongs to an event: call SetEvent first",
            )
        })?;
        // Checked before anything is stored: a value out of range names its field.
        crate::policy::from_message(&req)?;
        let overrides = crate::policy::overrides(&req, &event.event_id);
        let overrides_json = saleboard_proto::json::to_string(&overrides).map_err(|e| {
            tracing::error!(error = %e, "cannot write a policy as JSON");
            Status::internal("cannot store the policy right now")
        })?;
        let record = PolicyRecord {
            event_id: event.event_id.clone(),
            overrides_json,
            updated_at: call.at,
            updated_by: call.organizer.clone(),
        };
        let outcome = |r: &PolicyRecord| match policy_answer(r) {
            Ok(answer) => ok_outcome(&answer),
            Err(e) => format!("OK (the policy is not writable as JSON: {})", e.message()),
        };
        let stored = self
            .store
            .set_integrity_policy(&record, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(event = %stored.event_id, organizer = %call.organizer, "integrity policy set");
        policy_answer(&stored)
    }

    async fn review_integrity_flag_in(
        &self,
        call: &AuditCall,
        req: ReviewIntegrityFlagRequest,
    ) -> Result<IntegrityFlag, Status> {
        if req.flag_id.is_empty() {
            return Err(invalid_field("flag_id", "must not be empty"));
        }
        let Some(state) = flag_state("state", req.state)? else {
            return Err(invalid_field(
                "state",
                "is required: FLAG_STATE_OPEN, UNDER_REVIEW, CLEARED or CONFIRMED",
            ));
        };
        let note = req.note.trim();
        if note.is_empty() {
            return Err(invalid_field(
                "note",
                "is required: say what was found (the audit log keeps it)",
            ));
        }
        bounded_text("note", note)?;
        let outcome = |r: &FlagRecord| ok_outcome(&flag_msg(r.clone()));
        let record = self
            .store
            .review_flag(
                &FlagReview {
                    flag_id: &req.flag_id,
                    state,
                    note,
                    organizer: &call.organizer,
                    at: call.at,
                },
                Audit::new(call, &outcome),
            )
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(flag = %record.flag_id, site = %record.site_id, state = record.state.as_str(), organizer = %call.organizer, "integrity flag reviewed");
        self.refresh_board().await;
        Ok(flag_msg(record))
    }

    async fn decide_action_in(
        &self,
        call: &AuditCall,
        action_id: &str,
        approve: bool,
        note: &str,
    ) -> Result<AdminAction, Status> {
        if action_id.is_empty() {
            return Err(invalid_field("action_id", "must not be empty"));
        }
        let note = note.trim();
        bounded_text("reason", note)?;
        let decision = ActionDecision {
            action_id,
            approve,
            organizer: &call.organizer,
            note,
            at: call.at,
        };
        let outcome = |r: &ActionRecord| ok_outcome(&action_msg(r.clone()));
        let record = self
            .store
            .decide_action(&decision, Audit::new(call, &outcome))
            .await
            .map_err(|e| from_storage(&e))?;
        tracing::info!(
            action = %record.action_id,
            state = %record.state,
            site = %record.site_id,
            event = %record.event_id,
            organizer = %call.organizer,
            "action decided"
        );
        if approve {
            let (what, detail) = match record.kind.holds() {
                Some(true) => ("site held", String::new()),
                Some(false) => ("site released", String::new()),
                None => (
                    "transactions voided",
                    format!(
                        ": {} voids through ledger position {}",
                        record.adjustment.voided_rows, record.adjustment.through_position
                    ),
                ),
            };
            self.changes.record(
                what,
                &format!(
                    "{} in {} by {}{detail}",
                    record.site_id, record.event_id, call.organizer
                ),
            );
            self.refresh_board().await;
        }
        Ok(action_msg(record))
    }
}

/// Names a read's organizer (from the auth layer) in the call's span; changes do it in
/// [`AdminService::call`].
fn attribute<M>(request: &Request<M>) {
    if let Some(organizer) = request.extensions().get::<Organizer>() {
        tracing::Span::current().record("organizer", organizer.name());
    }
}

/// The entries after a page token's position (0 for none).
fn audit_cursor(page_token: &str) -> Result<u64, Status> {
    if page_token.is_empty() {
        return Ok(0);
    }
    match PageToken::parse(page_token) {
        Some(PageToken {
            generation: 0,
            offset,
            dimension: None,
        }) => Ok(u64::try_from(offset).unwrap_or(u64::MAX)),
        _ => Err(invalid_field(
            "page_token",
            "is not an audit log page token this service issued",
        )),
    }
}

#[tonic::async_trait]
impl AdminApi for AdminService {
    async fn create_site(
        &self,
        request: Request<CreateSiteRequest>,
    ) -> Result<Response<Site>, Status> {
        let call = Self::call(&request, "CreateSite")?;
        let result = self.create_site_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn set_site_enabled(
        &self,
        request: Request<SetSiteEnabledRequest>,
    ) -> Result<Response<Site>, Status> {
        let call = Self::call(&request, "SetSiteEnabled")?;
        let result = self.set_site_enabled_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn list_sites(
        &self,
        request: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        attribute(&request);
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
        let call = Self::call(&request, "CreateApiKey")?;
        let result = self.create_api_key_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        let call = Self::call(&request, "RevokeApiKey")?;
        let result = self.revoke_api_key_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        attribute(&request);
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
        let call = Self::call(&request, "SetEvent")?;
        let result = self.set_event_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn get_event(
        &self,
        request: Request<GetEventRequest>,
    ) -> Result<Response<EventMsg>, Status> {
        attribute(&request);
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
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        attribute(&request);
        Ok(Response::new(list_events(self.store.as_ref()).await?))
    }

    async fn set_exchange_rates(
        &self,
        request: Request<SetExchangeRatesRequest>,
    ) -> Result<Response<SetExchangeRatesResponse>, Status> {
        let call = Self::call(&request, "SetExchangeRates")?;
        let result = self
            .set_exchange_rates_in(&call, request.into_inner())
            .await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn list_exchange_rates(
        &self,
        request: Request<ListExchangeRatesRequest>,
    ) -> Result<Response<ListExchangeRatesResponse>, Status> {
        attribute(&request);
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

    async fn create_organizer(
        &self,
        request: Request<CreateOrganizerRequest>,
    ) -> Result<Response<OrganizerMsg>, Status> {
        let call = Self::call(&request, "CreateOrganizer")?;
        let result = self.create_organizer_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn list_organizers(
        &self,
        request: Request<ListOrganizersRequest>,
    ) -> Result<Response<ListOrganizersResponse>, Status> {
        attribute(&request);
        let named = self
            .store
            .list_organizers()
            .await
            .map_err(|e| from_storage(&e))?;
        let bootstrap = OrganizerMsg {
            name: BOOTSTRAP.to_owned(),
            ..OrganizerMsg::default()
        };
        Ok(Response::new(ListOrganizersResponse {
            organizers: std::iter::once(bootstrap)
                .chain(named.into_iter().map(|o| organizer_msg(o, String::new())))
                .collect(),
        }))
    }

    async fn revoke_organizer(
        &self,
        request: Request<RevokeOrganizerRequest>,
    ) -> Result<Response<OrganizerMsg>, Status> {
        let call = Self::call(&request, "RevokeOrganizer")?;
        let result = self.revoke_organizer_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn list_audit_log(
        &self,
        request: Request<ListAuditLogRequest>,
    ) -> Result<Response<ListAuditLogResponse>, Status> {
        attribute(&request);
        let req = request.into_inner();
        let after = audit_cursor(&req.page_token)?;
        let limit = match req.limit {
            0 => DEFAULT_AUDIT_LIMIT,
            l if l > MAX_AUDIT_LIMIT => {
                return Err(invalid_field(
                    "limit",
                    format!("is {l}; at most {MAX_AUDIT_LIMIT} entries per page"),
                ));
            }
            l => l,
        };
        let organizer = if req.organizer.is_empty() {
            None
        } else if req.organizer == saleboard_domain::action::AUTO_HOLD {
            // The automatic hold's own entries (not an organizer's name, by design).
            Some(req.organizer.clone())
        } else {
            let name = OrganizerName::parse(&req.organizer).map_err(|e| {
                invalid_field(
                    "organizer",
                    format!("{:?} {e}", saleboard_domain::ids::excerpt(&req.organizer)),
                )
            })?;
            Some(name.as_str().to_owned())
        };
        let since = req
            .since
            .as_ref()
            .map(|ts| instant("since", Some(ts)))
            .transpose()?;
        // One more than a page: whether there is a next page.
        let mut entries = self
            .store
            .audit_log(&AuditQuery {
                after,
                organizer,
                since,
                limit: limit + 1,
            })
            .await
            .map_err(|e| from_storage(&e))?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_page_token = match entries.last() {
            Some(last) if more => PageToken {
                generation: 0,
                offset: usize::try_from(last.position).unwrap_or(usize::MAX),
                dimension: None,
            }
            .encode(),
            _ => String::new(),
        };
        Ok(Response::new(ListAuditLogResponse {
            entries: entries.into_iter().map(entry_msg).collect(),
            next_page_token,
        }))
    }

    async fn set_site_hold(
        &self,
        request: Request<SetSiteHoldRequest>,
    ) -> Result<Response<AdminAction>, Status> {
        let call = Self::call(&request, "SetSiteHold")?;
        let result = self.set_site_hold_in(&call, request.into_inner()).await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn adjust_transactions(
        &self,
        request: Request<AdjustTransactionsRequest>,
    ) -> Result<Response<AdminAction>, Status> {
        let call = Self::call(&request, "AdjustTransactions")?;
        let result = self
            .adjust_transactions_in(&call, request.into_inner())
            .await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn approve_action(
        &self,
        request: Request<ApproveActionRequest>,
    ) -> Result<Response<AdminAction>, Status> {
        let call = Self::call(&request, "ApproveAction")?;
        let req = request.into_inner();
        let result = self.decide_action_in(&call, &req.action_id, true, "").await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn reject_action(
        &self,
        request: Request<RejectActionRequest>,
    ) -> Result<Response<AdminAction>, Status> {
        let call = Self::call(&request, "RejectAction")?;
        let req = request.into_inner();
        let result = self
            .decide_action_in(&call, &req.action_id, false, &req.reason)
            .await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn set_integrity_policy(
        &self,
        request: Request<IntegrityPolicy>,
    ) -> Result<Response<IntegrityPolicy>, Status> {
        let call = Self::call(&request, "SetIntegrityPolicy")?;
        let result = self
            .set_integrity_policy_in(&call, request.into_inner())
            .await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn get_integrity_policy(
        &self,
        request: Request<GetIntegrityPolicyRequest>,
    ) -> Result<Response<IntegrityPolicy>, Status> {
        attribute(&request);
        let req = request.into_inner();
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        let event = find_event(&events, &req.event_id, UnixNanos::now(), || {
            Status::failed_precondition("no event is configured: call SetEvent first")
        })?;
        let stored = self
            .store
            .integrity_policy(&event.event_id)
            .await
            .map_err(|e| from_storage(&e))?;
        let answer = match stored {
            Some(record) => policy_answer(&record)?,
            None => crate::policy::to_message(
                &event.event_id,
                &IntegrityPolicy::default(),
                &saleboard_domain::integrity::Policy::default(),
            ),
        };
        Ok(Response::new(answer))
    }

    async fn list_integrity_flags(
        &self,
        request: Request<ListIntegrityFlagsRequest>,
    ) -> Result<Response<ListIntegrityFlagsResponse>, Status> {
        attribute(&request);
        let req = request.into_inner();
        let state = flag_state("state", req.state)?;
        let site = if req.site_id.is_empty() {
            None
        } else {
            Some(site_id("site_id", &req.site_id)?)
        };
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        let event = find_event(&events, &req.event_id, UnixNanos::now(), || {
            Status::failed_precondition("no event is configured: call SetEvent first")
        })?;
        let (flags, undecided_sites) = self
            .store
            .list_flags(&event.event_id, site.as_ref(), state)
            .await
            .map_err(|e| from_storage(&e))?;
        Ok(Response::new(ListIntegrityFlagsResponse {
            flags: flags.into_iter().map(flag_msg).collect(),
            undecided_sites,
        }))
    }

    async fn get_integrity_flag(
        &self,
        request: Request<GetIntegrityFlagRequest>,
    ) -> Result<Response<IntegrityFlag>, Status> {
        attribute(&request);
        let req = request.into_inner();
        let found = self
            .store
            .flag(&req.flag_id)
            .await
            .map_err(|e| from_storage(&e))?;
        match found {
            Some(f) => Ok(Response::new(flag_msg(f))),
            None => Err(Status::not_found(format!(
                "flag {:?} does not exist",
                saleboard_domain::ids::excerpt(&req.flag_id)
            ))),
        }
    }

    async fn sample_integrity_flag(
        &self,
        request: Request<SampleIntegrityFlagRequest>,
    ) -> Result<Response<IntegritySample>, Status> {
        attribute(&request);
        let req = request.into_inner();
        if req.size > 10_000 {
            return Err(invalid_field(
                "size",
                format!("is {}; at most 10000", req.size),
            ));
        }
        let flag = self
            .store
            .flag(&req.flag_id)
            .await
            .map_err(|e| from_storage(&e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "flag {:?} does not exist",
                    saleboard_domain::ids::excerpt(&req.flag_id)
                ))
            })?;
        let size = if req.size == 0 {
            let stored = self
                .store
                .integrity_policy(&flag.event_id)
                .await
                .map_err(|e| from_storage(&e))?;
            match stored {
                Some(record) => policy_answer(&record)?.sample_size.unwrap_or(59),
                None => 59,
            }
        } else {
            req.size
        };
        let ids = self
            .store
            .sale_ids(&flag.event_id, &flag.site_id, flag.watermark)
            .await
            .map_err(|e| from_storage(&e))?;
        let drawn = saleboard_domain::integrity::sample(
            flag.sample_seed,
            ids.iter().map(String::as_str),
            usize::try_from(size).unwrap_or(usize::MAX),
        );
        Ok(Response::new(IntegritySample {
            flag_id: flag.flag_id.clone(),
            event_id: flag.event_id.clone(),
            site_id: flag.site_id.to_string(),
            seed: flag.sample_seed,
            population: u64::try_from(ids.len()).unwrap_or(u64::MAX),
            watermark: flag.watermark,
            transaction_ids: drawn.into_iter().map(str::to_owned).collect(),
        }))
    }

    async fn backtest_integrity(
        &self,
        request: Request<BacktestIntegrityRequest>,
    ) -> Result<Response<IntegrityBacktest>, Status> {
        attribute(&request);
        let req = request.into_inner();
        let events = self.store.events().await.map_err(|e| from_storage(&e))?;
        let event = find_event(&events, &req.event_id, UnixNanos::now(), || {
            Status::failed_precondition(
                "no event is configured or current: name the event to backtest (event_id)",
            )
        })?;
        let event_id = event.event_id.clone();
        let found = crate::integrity::backtest_event(self.store.as_ref(), &self.board, &event_id)
            .await
            .map_err(|e| from_storage(&e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "event {:?} does not exist",
                    saleboard_domain::ids::excerpt(&event_id)
                ))
            })?;
        Ok(Response::new(backtest_msg(event_id, found)))
    }

    async fn get_event_report(
        &self,
        request: Request<GetEventReportRequest>,
    ) -> Result<Response<EventReport>, Status> {
        attribute(&request);
        let req = request.into_inner();
        self.reports
            .get(
                &req.event_id,
                &req.baseline_event_id,
                crate::report::Asker::Organizer,
                self.report_wait,
            )
            .await
            .map(|(report, _)| Response::new(EventReport::clone(&report)))
            .map_err(|e| report_status(&e))
    }

    async fn review_integrity_flag(
        &self,
        request: Request<ReviewIntegrityFlagRequest>,
    ) -> Result<Response<IntegrityFlag>, Status> {
        let call = Self::call(&request, "ReviewIntegrityFlag")?;
        let result = self
            .review_integrity_flag_in(&call, request.into_inner())
            .await;
        self.finish(&call, result.map(Response::new)).await
    }

    async fn list_actions(
        &self,
        request: Request<ListActionsRequest>,
    ) -> Result<Response<ListActionsResponse>, Status> {
        attribute(&request);
        let req = request.into_inner();
        let state = match ActionStateMsg::try_from(req.state) {
            Ok(ActionStateMsg::Unspecified) => None,
            Ok(ActionStateMsg::Pending) => Some(ActionState::Pending),
            Ok(ActionStateMsg::Applied) => Some(ActionState::Applied),
            Ok(ActionStateMsg::Rejected) => Some(ActionState::Rejected),
            Err(_) => {
                return Err(invalid_field(
                    "state",
                    format!("{} is not an ActionState", req.state),
                ));
            }
        };
        let event = (!req.event_id.is_empty()).then_some(req.event_id.as_str());
        let actions = self
            .store
            .list_actions(event, state)
            .await
            .map_err(|e| from_storage(&e))?;
        Ok(Response::new(ListActionsResponse {
            actions: actions.into_iter().map(action_msg).collect(),
        }))
    }
}
