-- Saleboard schema, SQLite. Times are i64 nanoseconds since the Unix epoch (UTC).

CREATE TABLE sites (
    site_id       TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    created_at_ns INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    site_id       TEXT NOT NULL REFERENCES sites (site_id),
    -- SHA-256 of the secret, hex. The secret itself is never stored.
    secret_hash   TEXT NOT NULL UNIQUE,
    created_at_ns INTEGER NOT NULL,
    revoked_at_ns INTEGER
) STRICT;
CREATE INDEX api_keys_site ON api_keys (site_id);

-- One event per deployment: the row with id 1.
CREATE TABLE event (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    event_id           TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    starts_at_ns       INTEGER NOT NULL,
    ends_at_ns         INTEGER NOT NULL,
    reporting_currency TEXT NOT NULL
) STRICT;

CREATE TABLE exchange_rates (
    currency TEXT PRIMARY KEY,
    rate     TEXT NOT NULL
) STRICT;

-- The append-only ledger. Writers hold SQLite's write lock (BEGIN IMMEDIATE) from reading the
-- head to commit, so positions become visible in order.
CREATE TABLE ledger (
    position       INTEGER PRIMARY KEY,
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    transaction_id TEXT NOT NULL,
    store_id       TEXT NOT NULL,
    kind           INTEGER NOT NULL CHECK (kind IN (1, 2)),
    currency       TEXT NOT NULL,
    amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
    occurred_at_ns INTEGER NOT NULL,
    refund_of      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    received_at_ns INTEGER NOT NULL,
    UNIQUE (site_id, transaction_id)
) STRICT;
CREATE INDEX ledger_refunds ON ledger (site_id, refund_of) WHERE refund_of <> '';

CREATE TABLE ledger_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    head INTEGER NOT NULL
) STRICT;
INSERT INTO ledger_head (id, head) VALUES (1, 0);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: DELETE refused');
END;
