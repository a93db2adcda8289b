//! Rows as the queries return them (named columns, read with `sqlx::FromRow`), and how each
//! becomes a domain record. A row that does not convert means the table holds what the write
//! path never writes: [`StorageError::Corrupt`](crate::StorageError::Corrupt), naming the table.

use saleboard_domain::totals::{CurrencyTotals, HourlyTotals, NationalHourKey};
use saleboard_domain::{
    Currency, Dimension, Event, Kind, Nature, Origin, Rate, Segments, SiteId, Slug, StoreId,
    TransactionId, UnixNanos, ValidTransaction,
};

use crate::model::{currency, site_id, to_u64, wide};
use crate::{
    ActiveKey, AggregatorState, ApiKeyRecord, LedgerRow, Result, SiteRecord, StorageError,
};
use saleboard_domain::action::{ActionKind, ActionState};
use saleboard_domain::event as domain_event;

/// `sites`.
#[derive(sqlx::FromRow)]
pub(crate) struct SiteRow {
    site_id: String,
    display_name: String,
    created_at_ns: i64,
    disabled_at_ns: Option<i64>,
}

impl SiteRow {
    pub(crate) fn into_record(self) -> Result<SiteRecord> {
        Ok(SiteRecord {
            site_id: site_id("sites", &self.site_id)?,
            display_name: self.display_name,
            created_at: UnixNanos(self.created_at_ns),
            disabled_at: self.disabled_at_ns.map(UnixNanos),
        })
    }
}

/// `api_keys` as listed.
#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    key_id: String,
    site_id: String,
    created_at_ns: i64,
    revoked_at_ns: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn into_record(self) -> Result<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            key_id: self.key_id,
            site_id: site_id("api_keys", &self.site_id)?,
            created_at: UnixNanos(self.created_at_ns),
            revoked_at: self.revoked_at_ns.map(UnixNanos),
        })
    }
}

/// `api_keys` as the authentication cache needs them.
#[derive(sqlx::FromRow)]
pub(crate) struct ActiveKeyRow {
    key_id: String,
    site_id: String,
    secret_hash: String,
}

impl ActiveKeyRow {
    pub(crate) fn into_record(self) -> Result<ActiveKey> {
        Ok(ActiveKey {
            key_id: self.key_id,
            site_id: site_id("api_keys", &self.site_id)?,
            secret_hash: self.secret_hash,
        })
    }
}

/// `events`.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    event_id: String,
    display_name: String,
    starts_at_ns: i64,
    ends_at_ns: i64,
    closes_at_ns: i64,
    reporting_currency: String,
    baseline_event_id: String,
    time_zone: String,
}

/// An event as a backup holds it, in [`EventRow`]'s order.
pub(crate) type EventTuple = (String, String, i64, i64, i64, String, String, String);

impl From<EventTuple> for EventRow {
    fn from(t: EventTuple) -> Self {
        let (
            event_id,
            display_name,
            starts_at_ns,
            ends_at_ns,
            closes_at_ns,
            reporting_currency,
            baseline_event_id,
            time_zone,
        ) = t;
        Self {
            event_id,
            display_name,
            starts_at_ns,
            ends_at_ns,
            closes_at_ns,
            reporting_currency,
            baseline_event_id,
            time_zone,
        }
    }
}

impl EventRow {
    pub(crate) fn into_event(self) -> Result<Event> {
        let corrupt = |e: domain_event::EventError| StorageError::corrupt("events", e);
        Ok(Event::new(
            &self.event_id,
            &self.display_name,
            UnixNanos(self.starts_at_ns),
            UnixNanos(self.ends_at_ns),
            &self.reporting_currency,
        )
        .and_then(|e| e.closing_at(UnixNanos(self.closes_at_ns)))
        .and_then(|e| e.compared_with(&self.baseline_event_id))
        .map_err(corrupt)?
        .shown_in(&self.time_zone))
    }
}

/// `exchange_rates`.
#[derive(sqlx::FromRow)]
pub(crate) struct RateRow {
    currency: String,
    rate: String,
}

impl RateRow {
    pub(crate) fn into_pair(self) -> Result<(Currency, Rate)> {
        Ok((
            currency("exchange_rates", &self.currency)?,
            Rate::parse(&self.rate).map_err(|e| StorageError::corrupt("exchange_rates", e))?,
        ))
    }
}

/// The four sums of a per-currency total, as stored (money as decimal text).
#[derive(sqlx::FromRow)]
pub(crate) struct SumsColumns {
    sale_count: i64,
    gross_minor: String,
    refund_count: i64,
    refunded_minor: String,
}

impl SumsColumns {
    /// The totals, checked (`table` names the source in an error).
    fn into_totals(self, table: &'static str) -> Result<CurrencyTotals> {
        Ok(CurrencyTotals {
            sale_count: to_u64(table, self.sale_count)?,
            gross_minor: wide(table, &self.gross_minor)?,
            refund_count: to_u64(table, self.refund_count)?,
            refunded_minor: wide(table, &self.refunded_minor)?,
        })
    }
}

/// `site_totals`, money sums as decimal text (NUMERIC on PostgreSQL, TEXT on SQLite).
#[derive(sqlx::FromRow)]
pub(crate) struct TotalsRow {
    event_id: String,
    site_id: String,
    currency: String,
    #[sqlx(flatten)]
    sums: SumsColumns,
}

impl TotalsRow {
    /// (event, site, currency, totals).
    pub(crate) fn into_totals(self) -> Result<(String, SiteId, Currency, CurrencyTotals)> {
        const T: &str = "site_totals";
        Ok((
            self.event_id,
            site_id(T, &self.site_id)?,
            currency(T, &self.currency)?,
            self.sums.into_totals(T)?,
        ))
    }
}

/// `late_totals`, the sums as decimal text.
#[derive(sqlx::FromRow)]
pub(crate) struct LateRow {
    event_id: String,
    site_id: String,
    currency: String,
    late_refunded_minor: String,
    late_sales_minor: String,
    sale_count: i64,
    gross_minor: String,
    round_count: i64,
}

impl LateRow {
    /// (event, site, currency), figures.
    pub(crate) fn into_parts(
        self,
    ) -> Result<(
        saleboard_domain::totals::TotalsKey,
        saleboard_domain::late::LateTotals,
    )> {
        const T: &str = "late_totals";
        let figures = saleboard_domain::late::LateTotals {
            late_refunded_minor: wide(T, &self.late_refunded_minor)?,
            late_sales_minor: wide(T, &self.late_sales_minor)?,
            sale_count: u64::try_from(self.sale_count)
                .map_err(|_| StorageError::corrupt(T, "a negative sale count"))?,
            gross_minor: wide(T, &self.gross_minor)?,
            round_count: u64::try_from(self.round_count)
                .map_err(|_| StorageError::corrupt(T, "a negative round count"))?,
        };
        if figures.late_refunded_minor < 0
            || figures.late_sales_minor < 0
            || figures.gross_minor < 0
        {
            return Err(StorageError::corrupt(T, "a negative late figure"));
        }
        Ok((
            (
                self.event_id,
                site_id(T, &self.site_id)?,
                currency(T, &self.currency)?,
            ),
            figures,
        ))
    }
}

/// `late_windows`.
#[derive(sqlx::FromRow)]
pub(crate) struct LateWindowRow {
    pub(crate) event_id: String,
    ends_at_ns: i64,
    latest_received_ns: i64,
}

impl LateWindowRow {
    /// The window.
    pub(crate) fn window(&self) -> saleboard_domain::late::LateWindow {
        saleboard_domain::late::LateWindow {
            ends_at: UnixNanos(self.ends_at_ns),
            latest_received: UnixNanos(self.latest_received_ns),
        }
    }
}

/// `hourly_totals`, the net as decimal text.
#[derive(sqlx::FromRow)]
pub(crate) struct HourlyRow {
    event_id: String,
    site_id: String,
    currency: String,
    hour_start_ns: i64,
    sale_count: i64,
    net_minor: String,
}

impl HourlyRow {
    /// (event, site, currency, hour, totals).
    pub(crate) fn into_hourly(self) -> Result<(String, SiteId, Currency, UnixNanos, HourlyTotals)> {
        const T: &str = "hourly_totals";
        Ok((
            self.event_id,
            site_id(T, &self.site_id)?,
            currency(T, &self.currency)?,
            UnixNanos(self.hour_start_ns),
            HourlyTotals {
                sale_count: to_u64(T, self.sale_count)?,
                net_minor: wide(T, &self.net_minor)?,
            },
        ))
    }
}

/// A row of `national_hourly_totals`.
#[derive(sqlx::FromRow)]
pub(crate) struct NationalHourRow {
    event_id: String,
    currency: String,
    hour_start_ns: i64,
    sale_count: i64,
    net_minor: String,
}

impl NationalHourRow {
    /// ((event, currency, hour), totals).
    pub(crate) fn into_parts(self) -> Result<(NationalHourKey, HourlyTotals)> {
        const T: &str = "national_hourly_totals";
        Ok((
            (
                self.event_id,
                currency(T, &self.currency)?,
                UnixNanos(self.hour_start_ns),
            ),
            HourlyTotals {
                sale_count: to_u64(T, self.sale_count)?,
                net_minor: wide(T, &self.net_minor)?,
            },
        ))
    }
}

/// An optional slug column: '' is none.
fn slug(value: &str) -> std::result::Result<Option<Slug>, saleboard_domain::IdError> {
    if value.is_empty() {
        Ok(None)
    } else {
        Slug::parse(value).map(Some)
    }
}

/// The columns of a ledger row that resolution needs.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredRow {
    site_id: String,
    transaction_id: String,
    store_id: String,
    kind: i16,
    currency: String,
    amount_minor: i64,
    occurred_at_ns: i64,
    refund_of: String,
    position: i64,
    event_id: String,
    brand: String,
    category: String,
    origin: i16,
}

impl StoredRow {
    /// The stored row as domain values, re-checked by the domain's own parsers: (site, the
    /// transaction, its position, its event).
    pub(crate) fn into_domain(self) -> Result<(SiteId, ValidTransaction, u64, String)> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StorageError::corrupt("ledger", format!("position {}: {what}: {e}", self.position))
        };
        let site = SiteId::parse(&self.site_id).map_err(|e| bad("site_id", &e))?;
        let kind = Kind::from_code(self.kind).ok_or_else(|| bad("kind", &self.kind))?;
        let names = if self.refund_of.is_empty() {
            None
        } else {
            Some(TransactionId::parse(&self.refund_of).map_err(|e| bad("refund_of", &e))?)
        };
        let nature = Nature::from_parts(kind, names).ok_or_else(|| {
            bad(
                "refund_of",
                &format!("{:?} on a row of kind {kind:?}", self.refund_of),
            )
        })?;
        // A void's id is its target's void id ("void/" and the target's), never a pushed one.
        let id = match &nature {
            Nature::VoidSale { of } | Nature::VoidRefund { of } => {
                let id = TransactionId::void_of(of);
                if id.as_str() != self.transaction_id {
                    return Err(bad(
                        "transaction_id",
                        &"not the void id of the row it names",
                    ));
                }
                id
            }
            Nature::Sale | Nature::Refund { .. } => {
                TransactionId::parse(&self.transaction_id).map_err(|e| bad("transaction_id", &e))?
            }
        };
        let tx = ValidTransaction::from_ledger(
            id,
            StoreId::parse(&self.store_id).map_err(|e| bad("store_id", &e))?,
            nature,
            Currency::parse(&self.currency).map_err(|e| bad("currency", &e))?,
            self.amount_minor,
            UnixNanos(self.occurred_at_ns),
            Segments {
                brand: slug(&self.brand).map_err(|e| bad("brand", &e))?,
                category: slug(&self.category).map_err(|e| bad("category", &e))?,
                origin: Origin::from_code(self.origin)
                    .ok_or_else(|| bad("origin", &self.origin))?,
            },
        );
        let position = u64::try_from(self.position).map_err(|e| bad("position", &e))?;
        Ok((site, tx, position, self.event_id))
    }
}

/// A whole ledger row, as the aggregator and `verify` read it.
#[derive(sqlx::FromRow)]
pub(crate) struct FullLedgerRow {
    #[sqlx(flatten)]
    stored: StoredRow,
    key_id: String,
    received_at_ns: i64,
}

/// A whole ledger row as a JSON array (SQLite's batched read, and a backup's ledger rows), in
/// [`FullLedgerRow`]'s order.
pub(crate) type LedgerTuple = (
    String,
    String,
    String,
    i16,
    String,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    String,
    i16,
    String,
    i64,
);

impl From<LedgerTuple> for FullLedgerRow {
    fn from(t: LedgerTuple) -> Self {
        let (
            site_id,
            transaction_id,
            store_id,
            kind,
            currency,
            amount_minor,
            occurred_at_ns,
            refund_of,
            position,
            event_id,
            brand,
            category,
            origin,
            key_id,
            received_at_ns,
        ) = t;
        Self {
            stored: StoredRow {
                site_id,
                transaction_id,
                store_id,
                kind,
                currency,
                amount_minor,
                occurred_at_ns,
                refund_of,
                position,
                event_id,
                brand,
                category,
                origin,
            },
            key_id,
            received_at_ns,
        }
    }
}

impl FullLedgerRow {
    pub(crate) fn into_row(self) -> Result<LedgerRow> {
        let (site, tx, position, event_id) = self.stored.into_domain()?;
        Ok(LedgerRow {
            position,
            event_id,
            site,
            key_id: self.key_id,
            received_at: UnixNanos(self.received_at_ns),
            tx,
        })
    }
}

/// The refunded sum of one sale.
#[derive(sqlx::FromRow)]
pub(crate) struct RefundedRow {
    pub(crate) site_id: String,
    pub(crate) sale_id: String,
    /// The refunds of one sale never exceed the sale, an i64, so the sum fits.
    pub(crate) refunded: i64,
}

impl RefundedRow {
    pub(crate) fn into_parts(self) -> Result<(SiteId, TransactionId, i128)> {
        Ok((
            site_id("ledger", &self.site_id)?,
            TransactionId::parse(&self.sale_id).map_err(|e| StorageError::corrupt("ledger", e))?,
            i128::from(self.refunded),
        ))
    }
}

/// The aggregator's state row joined with the ledger head.
#[derive(sqlx::FromRow)]
pub(crate) struct StateRow {
    applied_position: i64,
    updated_at_ns: i64,
    holder: String,
    lease_until_ns: i64,
    head: i64,
}

impl StateRow {
    pub(crate) fn into_state(self) -> Result<AggregatorState> {
        Ok(AggregatorState {
            applied: to_u64("aggregator_state", self.applied_position)?,
            head: to_u64("ledger_head", self.head)?,
            holder: self.holder,
            lease_until: UnixNanos(self.lease_until_ns),
            updated_at: UnixNanos(self.updated_at_ns),
        })
    }
}

/// `segment_site_totals`, sums as decimal text.
#[derive(sqlx::FromRow)]
pub(crate) struct SegmentSiteTotalsRow {
    event_id: String,
    site_id: String,
    dimension: i16,
    key: String,
    currency: String,
    #[sqlx(flatten)]
    sums: SumsColumns,
}

fn dimension(table: &'static str, code: i16) -> Result<Dimension> {
    Dimension::from_code(code)
        .ok_or_else(|| StorageError::corrupt(table, format!("dimension {code}")))
}

impl SegmentSiteTotalsRow {
    /// (event, site, dimension, key, currency, totals).
    pub(crate) fn into_parts(
        self,
    ) -> Result<(String, SiteId, Dimension, String, Currency, CurrencyTotals)> {
        const T: &str = "segment_site_totals";
        Ok((
            self.event_id,
            site_id(T, &self.site_id)?,
            dimension(T, self.dimension)?,
            self.key,
            currency(T, &self.currency)?,
            self.sums.into_totals(T)?,
        ))
    }
}

/// `segment_totals`, sums as decimal text.
#[derive(sqlx::FromRow)]
pub(crate) struct SegmentTotalsRow {
    event_id: String,
    dimension: i16,
    key: String,
    currency: String,
    #[sqlx(flatten)]
    sums: SumsColumns,
    site_count: i64,
}

impl SegmentTotalsRow {
    /// (event, dimension, key, currency, totals, site count).
    pub(crate) fn into_parts(
        self,
    ) -> Result<(String, Dimension, String, Currency, CurrencyTotals, u32)> {
        const T: &str = "segment_totals";
        Ok((
            self.event_id,
            dimension(T, self.dimension)?,
            self.key,
            currency(T, &self.currency)?,
            self.sums.into_totals(T)?,
            u32::try_from(self.site_count).map_err(|e| StorageError::corrupt(T, e))?,
        ))
    }
}

/// `organizers` as listed (never the secret's hash).
#[derive(sqlx::FromRow)]
pub(crate) struct OrganizerRow {
    name: String,
    created_at_ns: i64,
    created_by: String,
    revoked_at_ns: Option<i64>,
}

impl OrganizerRow {
    pub(crate) fn into_record(self) -> crate::OrganizerRecord {
        crate::OrganizerRecord {
            name: self.name,
            created_at: UnixNanos(self.created_at_ns),
            created_by: self.created_by,
            revoked_at: self.revoked_at_ns.map(UnixNanos),
        }
    }
}

/// `audit_log`.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    position: i64,
    at_ns: i64,
    organizer: String,
    rpc: String,
    request_json: String,
    outcome: String,
    prev_sha256: String,
    sha256: String,
}

impl AuditRow {
    pub(crate) fn into_entry(self) -> Result<crate::AuditEntry> {
        Ok(crate::AuditEntry {
            position: to_u64("audit_log", self.position)?,
            at: UnixNanos(self.at_ns),
            organizer: self.organizer,
            rpc: self.rpc,
            request_json: self.request_json,
            outcome: self.outcome,
            prev_sha256: self.prev_sha256,
            sha256: self.sha256,
        })
    }
}

/// `admin_actions`.
#[derive(sqlx::FromRow)]
pub(crate) struct ActionRow {
    action_id: String,
    kind: String,
    state: String,
    event_id: String,
    site_id: String,
    reason: String,
    proposed_by: String,
    proposed_at_ns: i64,
    decided_by: Option<String>,
    decided_at_ns: Option<i64>,
    decision_note: String,
    transaction_ids: String,
    flag_id: String,
    voided_rows: i64,
    through_position: i64,
}

impl ActionRow {
    pub(crate) fn into_record(self) -> Result<crate::ActionRecord> {
        let corrupt = |detail: String| StorageError::Corrupt {
            table: "admin_actions",
            detail,
        };
        Ok(crate::ActionRecord {
            kind: ActionKind::parse(&self.kind)
                .ok_or_else(|| corrupt(format!("unknown kind {:?}", self.kind)))?,
            state: ActionState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?,
            site_id: site_id("admin_actions", &self.site_id)?,
            action_id: self.action_id,
            event_id: self.event_id,
            reason: self.reason,
            proposed_by: self.proposed_by,
            proposed_at: UnixNanos(self.proposed_at_ns),
            decided_by: self.decided_by,
            decided_at: self.decided_at_ns.map(UnixNanos),
            decision_note: self.decision_note,
            adjustment: crate::Adjustment {
                transaction_ids: if self.transaction_ids.is_empty() {
                    Vec::new()
                } else {
                    self.transaction_ids.split(',').map(str::to_owned).collect()
                },
                flag_id: self.flag_id,
                voided_rows: u64::try_from(self.voided_rows)
                    .map_err(|_| corrupt(format!("voided_rows {}", self.voided_rows)))?,
                through_position: u64::try_from(self.through_position)
                    .map_err(|_| corrupt(format!("through_position {}", self.through_position)))?,
            },
        })
    }
}

/// `integrity_flags`.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct FlagRow {
    flag_id: String,
    event_id: String,
    site_id: String,
    rule: String,
    rule_version: i64,
    severity: String,
    state: String,
    statistic: String,
    threshold: String,
    national: String,
    inputs_json: String,
    watermark: i64,
    raised_at_ns: i64,
    cleared_at_watermark: Option<i64>,
    reviewed_by: Option<String>,
    reviewed_at_ns: Option<i64>,
    note: String,
    sample_seed: i64,
}

impl FlagRow {
    pub(crate) fn into_record(self) -> Result<crate::FlagRecord> {
        use saleboard_domain::integrity::{FlagState, Rule, Severity};
        let corrupt = |detail: String| StorageError::Corrupt {
            table: "integrity_flags",
            detail,
        };
        Ok(crate::FlagRecord {
            site_id: site_id("integrity_flags", &self.site_id)?,
            rule: Rule::parse(&self.rule)
                .ok_or_else(|| corrupt(format!("unknown rule {:?}", self.rule)))?,
            rule_version: u32::try_from(self.rule_version)
                .map_err(|_| corrupt(format!("rule version {}", self.rule_version)))?,
            severity: Severity::parse(&self.severity)
                .ok_or_else(|| corrupt(format!("unknown severity {:?}", self.severity)))?,
            state: FlagState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?,
            watermark: to_u64("integrity_flags", self.watermark)?,
            cleared_at_watermark: self
                .cleared_at_watermark
                .map(|w| to_u64("integrity_flags", w))
                .transpose()?,
            flag_id: self.flag_id,
            event_id: self.event_id,
            statistic: self.statistic,
            threshold: self.threshold,
            national: self.national,
            inputs_json: self.inputs_json,
            raised_at: UnixNanos(self.raised_at_ns),
            reviewed_by: self.reviewed_by,
            reviewed_at: self.reviewed_at_ns.map(UnixNanos),
            note: self.note,
            // The seed's 64 bits, stored as a signed integer.
            sample_seed: u64::from_ne_bytes(self.sample_seed.to_ne_bytes()),
        })
    }
}

impl FlagRow {
    /// The row as a backup writes it: its columns in [`crate::sql`]'s flag order.
    pub(crate) fn into_values(self) -> Vec<serde_json::Value> {
        use serde_json::Value;
        vec![
            self.flag_id.into(),
            self.event_id.into(),
            self.site_id.into(),
            self.rule.into(),
            self.rule_version.into(),
            self.severity.into(),
            self.state.into(),
            self.statistic.into(),
            self.threshold.into(),
            self.national.into(),
            self.inputs_json.into(),
            self.watermark.into(),
            self.raised_at_ns.into(),
            self.cleared_at_watermark.map_or(Value::Null, Value::from),
            self.reviewed_by.map_or(Value::Null, Value::from),
            self.reviewed_at_ns.map_or(Value::Null, Value::from),
            self.note.into(),
            self.sample_seed.into(),
        ]
    }

    /// A backup's row, checked as a stored one is read.
    pub(crate) fn from_values(values: Vec<serde_json::Value>) -> Result<Self, String> {
        use serde_json::Value;
        let [
            flag_id,
            event_id,
            site_id,
            rule,
            rule_version,
            severity,
            state,
            statistic,
            threshold,
            national,
            inputs_json,
            watermark,
            raised_at_ns,
            cleared_at_watermark,
            reviewed_by,
            reviewed_at_ns,
            note,
            sample_seed,
        ]: [Value; 18] = values
            .try_into()
            .map_err(|v: Vec<Value>| format!("{} columns where 18 belong", v.len()))?;
        let text = |v: Value, name: &str| match v {
            Value::String(s) => Ok(s),
            other => Err(format!("{name} is not text: {other}")),
        };
        let int = |v: Value, name: &str| {
            v.as_i64()
                .ok_or_else(|| format!("{name} is not an integer: {v}"))
        };
        let opt_int = |v: Value, name: &str| match v {
            Value::Null => Ok(None),
            other => int(other, name).map(Some),
        };
        let row = Self {
            flag_id: text(flag_id, "flag_id")?,
            event_id: text(event_id, "event_id")?,
            site_id: text(site_id, "site_id")?,
            rule: text(rule, "rule")?,
            rule_version: int(rule_version, "rule_version")?,
            severity: text(severity, "severity")?,
            state: text(state, "state")?,
            statistic: text(statistic, "statistic")?,
            threshold: text(threshold, "threshold")?,
            national: text(national, "national")?,
            inputs_json: text(inputs_json, "inputs_json")?,
            watermark: int(watermark, "watermark")?,
            raised_at_ns: int(raised_at_ns, "raised_at_ns")?,
            cleared_at_watermark: opt_int(cleared_at_watermark, "cleared_at_watermark")?,
            reviewed_by: match reviewed_by {
                Value::Null => None,
                other => Some(text(other, "reviewed_by")?),
            },
            reviewed_at_ns: opt_int(reviewed_at_ns, "reviewed_at_ns")?,
            note: text(note, "note")?,
            sample_seed: int(sample_seed, "sample_seed")?,
        };
        // Every value as the store reads it back.
        row.clone().into_record().map_err(|e| e.to_string())?;
        Ok(row)
    }

    /// Binds every column, in the flag order, to a query of the full row.
    pub(crate) fn bind_all<'q, DB: sqlx::Database>(
        self,
        q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
    where
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        q.bind(self.flag_id)
            .bind(self.event_id)
            .bind(self.site_id)
            .bind(self.rule)
            .bind(self.rule_version)
            .bind(self.severity)
            .bind(self.state)
            .bind(self.statistic)
            .bind(self.threshold)
            .bind(self.national)
            .bind(self.inputs_json)
            .bind(self.watermark)
            .bind(self.raised_at_ns)
            .bind(self.cleared_at_watermark)
            .bind(self.reviewed_by)
            .bind(self.reviewed_at_ns)
            .bind(self.note)
            .bind(self.sample_seed)
    }
}
