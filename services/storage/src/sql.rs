//! The SQL that reads the same on PostgreSQL and SQLite (both accept `$n` placeholders,
//! `RETURNING` and `ON CONFLICT`). Column names match the row structs of [`crate::rows`].
//! What differs per database lives in each backend's [`crate::backend::Backend`] impl.

/// Registers a site unless its id is taken (then no row comes back).
pub(crate) const INSERT_SITE: &str = "\
    INSERT INTO sites (site_id, display_name, created_at_ns) VALUES ($1, $2, $3) \
    ON CONFLICT (site_id) DO NOTHING \
    RETURNING site_id, display_name, created_at_ns, disabled_at_ns";

/// Every site, by id.
pub(crate) const SITES: &str =
    "SELECT site_id, display_name, created_at_ns, disabled_at_ns FROM sites ORDER BY site_id";

/// One site by id.
pub(crate) const SITE: &str =
    "SELECT site_id, display_name, created_at_ns, disabled_at_ns FROM sites WHERE site_id = $1";

/// Disables (`$2` = 0, at `$3`) or enables (`$2` = 1) a site, when that changes it: no row comes
/// back for a site already so (disabling twice keeps the first time) or unknown.
pub(crate) const SET_SITE_ENABLED: &str = "\
    UPDATE sites SET disabled_at_ns = CASE WHEN $2 = 1 THEN NULL \
    ELSE COALESCE(disabled_at_ns, $3) END WHERE site_id = $1 \
    AND CASE WHEN $2 = 1 THEN disabled_at_ns IS NOT NULL ELSE disabled_at_ns IS NULL END \
    RETURNING site_id, display_name, created_at_ns, disabled_at_ns";

/// The version of the sites table: every write that changes a site bumps it in its own
/// transaction, so a reader that saw a version has seen the sites as they were at it.
pub(crate) const SITES_VERSION: &str = "SELECT sites FROM catalog_version WHERE id = 1";

/// Bumps the version of the sites table (in the transaction of the write that changes them).
pub(crate) const BUMP_SITES_VERSION: &str =
    "UPDATE catalog_version SET sites = sites + 1 WHERE id = 1";

/// Issues a key for a registered site (no row comes back for an unknown site).
pub(crate) const INSERT_KEY: &str = "\
    INSERT INTO api_keys (key_id, site_id, secret_hash, created_at_ns) \
    SELECT $1, site_id, $3, $4 FROM sites WHERE site_id = $2 \
    RETURNING key_id, site_id, created_at_ns, revoked_at_ns";

/// Revokes a key; revoking twice keeps the first time.
pub(crate) const REVOKE_KEY: &str = "\
    UPDATE api_keys SET revoked_at_ns = COALESCE(revoked_at_ns, $2) WHERE key_id = $1 \
    RETURNING key_id, site_id, created_at_ns, revoked_at_ns";

/// The keys of one site (`$1`), or of every site when `$1` is empty.
pub(crate) const KEYS: &str = "\
    SELECT key_id, site_id, created_at_ns, revoked_at_ns FROM api_keys \
    WHERE $1 = '' OR site_id = $1 ORDER BY site_id, created_at_ns, key_id";

/// Every key that authenticates: not revoked, of a site that is not disabled.
pub(crate) const ACTIVE_KEYS: &str = "\
    SELECT k.key_id, k.site_id, k.secret_hash FROM api_keys k \
    JOIN sites s ON s.site_id = k.site_id \
    WHERE k.revoked_at_ns IS NULL AND s.disabled_at_ns IS NULL";

/// The key with a secret hash, when it authenticates (as [`ACTIVE_KEYS`]).
pub(crate) const ACTIVE_KEY: &str = "\
    SELECT k.key_id, k.site_id, k.secret_hash FROM api_keys k \
    JOIN sites s ON s.site_id = k.site_id \
    WHERE k.secret_hash = $1 AND k.revoked_at_ns IS NULL AND s.disabled_at_ns IS NULL";

/// Creates or updates an event by id.
pub(crate) const UPSERT_EVENT: &str = "\
    INSERT INTO events (event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns, \
    reporting_currency, baseline_event_id, time_zone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (event_id) DO UPDATE SET display_name = excluded.display_name, \
    starts_at_ns = excluded.starts_at_ns, ends_at_ns = excluded.ends_at_ns, \
    closes_at_ns = excluded.closes_at_ns, reporting_currency = excluded.reporting_currency, \
    baseline_event_id = excluded.baseline_event_id, time_zone = excluded.time_zone";

/// Every event.
pub(crate) const EVENTS: &str = "\
    SELECT event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns, reporting_currency, \
    baseline_event_id, time_zone FROM events";

/// Sales of an event (`$1`) outside a window [`$2`, `$3`): what narrowing would strand.
pub(crate) const SALES_OUTSIDE: &str = "\
    SELECT COUNT(*) FROM ledger WHERE event_id = $1 AND kind = 1 \
    AND (occurred_at_ns < $2 OR occurred_at_ns >= $3)";

/// Sets one exchange rate of an event.
pub(crate) const UPSERT_RATE: &str = "\
    INSERT INTO exchange_rates (event_id, currency, rate) VALUES ($1, $2, $3) \
    ON CONFLICT (event_id, currency) DO UPDATE SET rate = excluded.rate";

/// Every rate of an event, by currency.
pub(crate) const RATES: &str =
    "SELECT currency, rate FROM exchange_rates WHERE event_id = $1 ORDER BY currency";

/// The ledger head, without a lock.
pub(crate) const HEAD: &str = "SELECT head FROM ledger_head WHERE id = 1";

/// Moves the head after an append.
pub(crate) const MOVE_HEAD: &str = "UPDATE ledger_head SET head = $1 WHERE id = 1";

/// The keys of the ledger's positions `($1, $2]`.
pub(crate) const KEYS_BETWEEN: &str =
    "SELECT site_id, transaction_id FROM ledger WHERE position > $1 AND position <= $2";

/// Ledger rows after a position, in order.
pub(crate) const LEDGER_AFTER: &str = "\
    SELECT site_id, transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, \
    refund_of, position, event_id, brand, category, origin, key_id, received_at_ns FROM ledger \
    WHERE position > $1 AND position <= $1 + $2 ORDER BY position";

/// The applied position.
pub(crate) const APPLIED: &str = "SELECT applied_position FROM aggregator_state WHERE id = 1";

/// The applied position and the breakdown figures' own (never ahead of it).
pub(crate) const APPLIED_BOTH: &str =
    "SELECT applied_position, breakdown_applied FROM aggregator_state WHERE id = 1";

/// Moves the applied position, and the breakdown figures' with it when `$3` is 1 (the apply
/// wrote every breakdown change).
pub(crate) const MOVE_APPLIED: &str = "\
    UPDATE aggregator_state SET applied_position = $1, updated_at_ns = $2, \
    breakdown_applied = CASE WHEN $3 = 1 THEN $1 ELSE breakdown_applied END WHERE id = 1";

/// Moves the breakdown watermark from `$2` to `$1` alone, if the totals include `$1`: zero
/// rows when another writer moved either (the write that asked is fenced).
pub(crate) const MOVE_BREAKDOWNS: &str = "\
    UPDATE aggregator_state SET breakdown_applied = $1 \
    WHERE id = 1 AND breakdown_applied = $2 AND applied_position >= $1 \
    RETURNING breakdown_applied";

/// Every per-currency total of every event.
pub(crate) const TOTALS: &str = "\
    SELECT event_id, site_id, currency, sale_count, CAST(gross_minor AS TEXT) AS gross_minor, \
    refund_count, CAST(refunded_minor AS TEXT) AS refunded_minor FROM site_totals";

/// Every late figure (`late_totals`), sums as decimal text.
pub(crate) const LATE: &str = "\
    SELECT event_id, site_id, currency, CAST(late_refunded_minor AS TEXT) AS late_refunded_minor, \
    CAST(late_sales_minor AS TEXT) AS late_sales_minor, sale_count, \
    CAST(gross_minor AS TEXT) AS gross_minor, round_count FROM late_totals";

/// The late figures of one event (`$1`).
pub(crate) const EVENT_LATE: &str = "\
    SELECT event_id, site_id, currency, CAST(late_refunded_minor AS TEXT) AS late_refunded_minor, \
    CAST(late_sales_minor AS TEXT) AS late_sales_minor, sale_count, \
    CAST(gross_minor AS TEXT) AS gross_minor, round_count FROM late_totals WHERE event_id = $1 \
    ORDER BY site_id, currency";

/// Every event's late window.
pub(crate) const LATE_WINDOWS: &str =
    "SELECT event_id, ends_at_ns, latest_received_ns FROM late_windows";

/// Sets an event's late window (`$1` event, `$2` end, `$3` latest receipt).
pub(crate) const UPSERT_LATE_WINDOW: &str = "\
    INSERT INTO late_windows (event_id, ends_at_ns, latest_received_ns) VALUES ($1, $2, $3) \
    ON CONFLICT (event_id) DO UPDATE SET ends_at_ns = excluded.ends_at_ns, \
    latest_received_ns = excluded.latest_received_ns";

/// The per-currency totals of an event (`$1`) changed after position `$2` (all for -1). No
/// index on `changed_at_position` (see the migration): the filter scans the event's rows.
pub(crate) const EVENT_TOTALS_SINCE: &str = "\
    SELECT event_id, site_id, currency, sale_count, CAST(gross_minor AS TEXT) AS gross_minor, \
    refund_count, CAST(refunded_minor AS TEXT) AS refunded_minor FROM site_totals \
    WHERE event_id = $1 AND changed_at_position > $2";

/// One site's per-currency totals in one event, by currency.
pub(crate) const SITE_TOTALS: &str = "\
    SELECT event_id, site_id, currency, sale_count, CAST(gross_minor AS TEXT) AS gross_minor, \
    refund_count, CAST(refunded_minor AS TEXT) AS refunded_minor FROM site_totals \
    WHERE event_id = $1 AND site_id = $2 ORDER BY currency";

/// Every hourly total of every event.
pub(crate) const HOURLY: &str = "\
    SELECT event_id, site_id, currency, hour_start_ns, sale_count, \
    CAST(net_minor AS TEXT) AS net_minor FROM hourly_totals";

/// Every hourly total of one event.
pub(crate) const EVENT_HOURLY: &str = "\
    SELECT event_id, site_id, currency, hour_start_ns, sale_count, \
    CAST(net_minor AS TEXT) AS net_minor FROM hourly_totals WHERE event_id = $1";

/// Every national hourly total (for the aggregator's check at start, and `verify`).
pub(crate) const NATIONAL_HOURLY: &str = "\
    SELECT event_id, currency, hour_start_ns, sale_count, \
    CAST(net_minor AS TEXT) AS net_minor FROM national_hourly_totals";

/// The applied position at which an event's totals last changed (0: never): every ledger row
/// changes a national hourly row of its event, so this moves exactly when the event's figures
/// do (a baseline's, say).
pub(crate) const EVENT_CHANGED_AT: &str = "\
    SELECT COALESCE(MAX(changed_at_position), 0) FROM national_hourly_totals \
    WHERE event_id = $1";

/// The national hourly totals of one event, by hour then currency.
pub(crate) const EVENT_NATIONAL_HOURLY: &str = "\
    SELECT event_id, currency, hour_start_ns, sale_count, \
    CAST(net_minor AS TEXT) AS net_minor FROM national_hourly_totals \
    WHERE event_id = $1 ORDER BY hour_start_ns, currency";

/// One site's hourly totals in one event, by hour then currency.
pub(crate) const SITE_HOURLY: &str = "\
    SELECT event_id, site_id, currency, hour_start_ns, sale_count, \
    CAST(net_minor AS TEXT) AS net_minor FROM hourly_totals \
    WHERE event_id = $1 AND site_id = $2 ORDER BY hour_start_ns, currency";

/// Takes or renews the aggregator lease; a row comes back when it is taken.
pub(crate) const TAKE_LEASE: &str = "\
    UPDATE aggregator_state SET holder = $1, lease_until_ns = $3 \
    WHERE id = 1 AND (holder = $1 OR holder = '' OR lease_until_ns < $2) RETURNING holder";

/// Gives the lease up.
pub(crate) const RELEASE_LEASE: &str =
    "UPDATE aggregator_state SET holder = '', lease_until_ns = 0 WHERE id = 1 AND holder = $1";

/// The aggregator's state and the ledger head.
pub(crate) const STATE: &str = "\
    SELECT a.applied_position, a.updated_at_ns, a.holder, a.lease_until_ns, h.head \
    FROM aggregator_state a, ledger_head h WHERE a.id = 1 AND h.id = 1";

/// The columns of `segment_site_totals`, sums as text.
macro_rules! segment_site_columns {
    () => {
        "SELECT event_id, site_id, dimension, key, currency, sale_count, \
         CAST(gross_minor AS TEXT) AS gross_minor, refund_count, \
         CAST(refunded_minor AS TEXT) AS refunded_minor FROM segment_site_totals"
    };
}

/// The columns of `segment_totals`, sums as text.
macro_rules! segment_columns {
    () => {
        "SELECT event_id, dimension, key, currency, sale_count, \
         CAST(gross_minor AS TEXT) AS gross_minor, refund_count, \
         CAST(refunded_minor AS TEXT) AS refunded_minor, \
         CAST(site_count AS BIGINT) AS site_count FROM segment_totals"
    };
}

/// Every site's breakdown rows of every event.
pub(crate) const SEGMENT_SITES: &str = segment_site_columns!();

/// Every national breakdown row of every event.
pub(crate) const SEGMENTS: &str = segment_columns!();

/// The national breakdown rows of an event (`$1`) changed after position `$2` (all for -1).
pub(crate) const EVENT_SEGMENTS_SINCE: &str = concat!(
    segment_columns!(),
    " WHERE event_id = $1 AND changed_at_position > $2"
);

/// Every breakdown row of one site (`$2`) in an event (`$1`).
pub(crate) const SITE_EVENT_SEGMENTS: &str = concat!(
    segment_site_columns!(),
    " WHERE event_id = $1 AND site_id = $2"
);

/// One site's (`$2`) breakdown rows in an event (`$1`) and a dimension (`$3`).
pub(crate) const SITE_SEGMENTS: &str = concat!(
    segment_site_columns!(),
    " WHERE event_id = $1 AND site_id = $2 AND dimension = $3"
);

/// Adds a named organizer unless the name is taken (then no row comes back).
pub(crate) const INSERT_ORGANIZER: &str = "\
    INSERT INTO organizers (name, secret_hash, created_at_ns, created_by) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING \
    RETURNING name, created_at_ns, created_by, revoked_at_ns";

/// Revokes an organizer; revoking twice keeps the first time.
pub(crate) const REVOKE_ORGANIZER: &str = "\
    UPDATE organizers SET revoked_at_ns = COALESCE(revoked_at_ns, $2) WHERE name = $1 \
    RETURNING name, created_at_ns, created_by, revoked_at_ns";

/// Every named organizer, by name.
pub(crate) const ORGANIZERS: &str =
    "SELECT name, created_at_ns, created_by, revoked_at_ns FROM organizers ORDER BY name";

/// The name of the organizer with a secret hash, unless it is revoked.
pub(crate) const ACTIVE_ORGANIZER: &str =
    "SELECT name FROM organizers WHERE secret_hash = $1 AND revoked_at_ns IS NULL";

/// Appends one audit entry (after the head was locked and read: [`crate::backend::Backend::LOCK_AUDIT`]).
pub(crate) const INSERT_AUDIT: &str = "\
    INSERT INTO audit_log (position, at_ns, organizer, rpc, request_json, outcome, \
    prev_sha256, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Moves the audit log's head to the entry just appended.
pub(crate) const MOVE_AUDIT_HEAD: &str =
    "UPDATE audit_head SET position = $1, sha256 = $2 WHERE id = 1";

/// The audit log's head, without a lock.
pub(crate) const AUDIT_HEAD: &str = "SELECT position, sha256 FROM audit_head WHERE id = 1";

/// Audit entries after position `$1`, of organizer `$2` (everyone's when empty), at or after
/// `$3`, in order, at most `$4`.
pub(crate) const AUDIT_LOG: &str = "\
    SELECT position, at_ns, organizer, rpc, request_json, outcome, prev_sha256, sha256 \
    FROM audit_log WHERE position > $1 AND ($2 = '' OR organizer = $2) AND at_ns >= $3 \
    ORDER BY position LIMIT $4";

/// The last migration applied (0 before any).
pub(crate) const LAST_MIGRATION: &str =
    "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM _sqlx_migrations WHERE success";

/// The columns of an action, in [`crate::rows::ActionRow`]'s order.
macro_rules! action_columns {
    () => {
        "action_id, kind, state, event_id, site_id, reason, proposed_by, proposed_at_ns, \
         decided_by, decided_at_ns, decision_note, transaction_ids, flag_id, voided_rows, \
         through_position"
    };
}

/// Proposes an action (PENDING).
pub(crate) const INSERT_ACTION: &str = concat!(
    "INSERT INTO admin_actions (action_id, kind, state, event_id, site_id, reason, \
     proposed_by, proposed_at_ns, transaction_ids, flag_id) \
     VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9) RETURNING ",
    action_columns!()
);

/// One action by id.
pub(crate) const ACTION: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM admin_actions WHERE action_id = $1"
);

/// Decides a pending action; no row when it was decided meanwhile.
pub(crate) const DECIDE_ACTION: &str = concat!(
    "UPDATE admin_actions SET state = $2, decided_by = $3, decided_at_ns = $4, \
     decision_note = $5 WHERE action_id = $1 AND state = 'pending' RETURNING ",
    action_columns!()
);

/// Records what an applied adjustment appended: `$2` voids, the last at position `$3`.
pub(crate) const ADJUSTED: &str = concat!(
    "UPDATE admin_actions SET voided_rows = $2, through_position = $3 WHERE action_id = $1 \
     RETURNING ",
    action_columns!()
);

/// A whole ledger row by its key (`$1` site, `$2` transaction id), in
/// [`crate::rows::FullLedgerRow`]'s order.
pub(crate) const LEDGER_ROW: &str = "\
    SELECT site_id, transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, \
    refund_of, position, event_id, brand, category, origin, key_id, received_at_ns FROM ledger \
    WHERE site_id = $1 AND transaction_id = $2";

/// The ledger rows of site `$1` that name transaction `$2` (a sale's refunds, a row's void),
/// in ledger order: a probe of the refunds index.
pub(crate) const LEDGER_NAMING: &str = "\
    SELECT site_id, transaction_id, store_id, kind, currency, amount_minor, occurred_at_ns, \
    refund_of, position, event_id, brand, category, origin, key_id, received_at_ns FROM ledger \
    WHERE site_id = $1 AND refund_of = $2 AND refund_of <> '' ORDER BY position";

/// Actions of an event (`$1`, empty: every event) in a state (`$2`, empty: every state),
/// newest first.
pub(crate) const ACTIONS: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM admin_actions WHERE ($1 = '' OR event_id = $1) AND ($2 = '' OR state = $2) \
     ORDER BY proposed_at_ns DESC, action_id DESC"
);

/// The pending action on a site in an event, if any.
pub(crate) const PENDING_ACTION: &str = "SELECT action_id FROM admin_actions \
    WHERE event_id = $1 AND site_id = $2 AND state = 'pending'";

/// Whether a site is held in an event (a count: 0 or 1).
pub(crate) const HELD_COUNT: &str =
    "SELECT COUNT(*) FROM site_holds WHERE event_id = $1 AND site_id = $2";

/// Whether an event exists (a count: 0 or 1).
pub(crate) const EVENT_COUNT: &str = "SELECT COUNT(*) FROM events WHERE event_id = $1";

/// Holds a site in an event.
pub(crate) const INSERT_HOLD: &str =
    "INSERT INTO site_holds (event_id, site_id, action_id, held_at_ns) VALUES ($1, $2, $3, $4)";

/// Releases a held site.
pub(crate) const DELETE_HOLD: &str = "DELETE FROM site_holds WHERE event_id = $1 AND site_id = $2";

/// The sites held in an event, by id.
pub(crate) const HELD_SITES: &str =
    "SELECT site_id FROM site_holds WHERE event_id = $1 ORDER BY site_id";

/// Sets an event's integrity policy.
pub(crate) const UPSERT_POLICY: &str = "INSERT INTO integrity_policies (event_id, overrides_json, \
    updated_at_ns, updated_by) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO UPDATE SET \
    overrides_json = excluded.overrides_json, updated_at_ns = excluded.updated_at_ns, \
    updated_by = excluded.updated_by";

/// An event's integrity policy.
pub(crate) const POLICY: &str = "SELECT event_id, overrides_json, updated_at_ns, updated_by \
    FROM integrity_policies WHERE event_id = $1";

/// The columns of a flag, in [`crate::rows::FlagRow`]'s order.
macro_rules! flag_columns {
    () => {
        "flag_id, event_id, site_id, rule, rule_version, severity, state, statistic, threshold, \
         national, inputs_json, watermark, raised_at_ns, cleared_at_watermark, reviewed_by, \
         reviewed_at_ns, note, sample_seed"
    };
}

/// Raises a flag unless one of the same site and rule still holds.
pub(crate) const INSERT_FLAG: &str = concat!(
    "INSERT INTO integrity_flags (",
    flag_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, NULL, '', $14) \
     ON CONFLICT (event_id, site_id, rule) WHERE cleared_at_watermark IS NULL DO NOTHING"
);

/// Marks a holding flag as no longer holding.
pub(crate) const CLEAR_FLAG: &str = "UPDATE integrity_flags SET cleared_at_watermark = $2 \
    WHERE flag_id = $1 AND cleared_at_watermark IS NULL AND watermark <= $2";

/// The position of an event's last stored evaluation.
pub(crate) const EVALUATED_AT: &str =
    "SELECT watermark FROM integrity_evaluations WHERE event_id = $1";

/// Records an event's last evaluation.
pub(crate) const UPSERT_EVALUATION: &str = "INSERT INTO integrity_evaluations (event_id, \
    watermark, evaluated_at_ns, undecided_sites) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) \
    DO UPDATE SET watermark = excluded.watermark, evaluated_at_ns = excluded.evaluated_at_ns, \
    undecided_sites = excluded.undecided_sites";

/// An event's undecided sites at its last evaluation.
pub(crate) const UNDECIDED: &str =
    "SELECT undecided_sites FROM integrity_evaluations WHERE event_id = $1";

/// The flags of an event still holding.
pub(crate) const HOLDING_FLAGS: &str = concat!(
    "SELECT ",
    flag_columns!(),
    " FROM integrity_flags WHERE event_id = $1 AND cleared_at_watermark IS NULL \
     ORDER BY site_id, rule"
);

/// Flags of an event (`$2`: one site, empty for all; `$3`: one state, empty for all), newest
/// first.
pub(crate) const FLAGS: &str = concat!(
    "SELECT ",
    flag_columns!(),
    " FROM integrity_flags WHERE event_id = $1 AND ($2 = '' OR site_id = $2) \
     AND ($3 = '' OR state = $3) ORDER BY raised_at_ns DESC, flag_id DESC"
);

/// One flag.
pub(crate) const FLAG: &str = concat!(
    "SELECT ",
    flag_columns!(),
    " FROM integrity_flags WHERE flag_id = $1"
);

/// Reviews a flag.
pub(crate) const REVIEW_FLAG: &str = concat!(
    "UPDATE integrity_flags SET state = $2, note = $3, reviewed_by = $4, reviewed_at_ns = $5 \
     WHERE flag_id = $1 RETURNING ",
    flag_columns!()
);

/// The sites with a flag under review in an event, by id.
pub(crate) const UNDER_REVIEW_SITES: &str = "SELECT DISTINCT site_id FROM integrity_flags \
    WHERE event_id = $1 AND state = 'under_review' ORDER BY site_id";

/// Every flag, by id (a backup's).
pub(crate) const ALL_FLAGS: &str = concat!(
    "SELECT ",
    flag_columns!(),
    " FROM integrity_flags ORDER BY flag_id"
);

/// A flag as it was (a restore's).
pub(crate) const INSERT_FLAG_AS_WAS: &str = concat!(
    "INSERT INTO integrity_flags (",
    flag_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
);

/// A site's sales in an event up to a ledger position, by id (a sample's population): those not
/// voided by then (a probe of the unique index for each sale's void), so a sample never asks a
/// site to justify a sale organizers took out, and stays the same whatever is voided later.
pub(crate) const SALE_IDS: &str = "SELECT l.transaction_id FROM ledger l WHERE l.site_id = $1 \
    AND l.event_id = $2 AND l.kind = 1 AND l.position <= $3 AND NOT EXISTS (SELECT 1 FROM \
    ledger v WHERE v.site_id = l.site_id AND v.transaction_id = 'void/' || l.transaction_id \
    AND v.position <= $3) ORDER BY l.transaction_id";

/// An event's end-ranking header (place 0); nothing when one is stored.
pub(crate) const INSERT_END_HEADER: &str = "INSERT INTO integrity_end_rankings (event_id, place, \
    site_id, watermark, taken_at_ns) VALUES ($1, 0, NULL, $2, $3) \
    ON CONFLICT (event_id, place) DO NOTHING RETURNING place";

/// One place of an event's end ranking.
pub(crate) const INSERT_END_PLACE: &str = "INSERT INTO integrity_end_rankings (event_id, place, \
    site_id, watermark, taken_at_ns) VALUES ($1, $2, $3, $4, $5)";

/// An event's end ranking: the header's count, then the places in order.
pub(crate) const END_RANKING: &str = "SELECT place, site_id FROM integrity_end_rankings \
    WHERE event_id = $1 ORDER BY place";

/// Every end ranking (a backup's).
pub(crate) const ALL_END_RANKINGS: &str = "SELECT event_id, place, site_id, watermark, \
    taken_at_ns FROM integrity_end_rankings ORDER BY event_id, place";
