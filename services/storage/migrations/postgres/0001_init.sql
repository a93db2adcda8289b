-- Saleboard schema, PostgreSQL. Times are i64 nanoseconds since the Unix epoch (UTC).

CREATE TABLE sites (
    site_id       TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    created_at_ns BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    site_id       TEXT NOT NULL REFERENCES sites (site_id),
    -- SHA-256 of the secret, hex. The secret itself is never stored.
    secret_hash   TEXT NOT NULL UNIQUE,
    created_at_ns BIGINT NOT NULL,
    revoked_at_ns BIGINT
);
CREATE INDEX api_keys_site ON api_keys (site_id);

-- One event per deployment: the row with id 1.
CREATE TABLE event (
    id                 SMALLINT PRIMARY KEY CHECK (id = 1),
    event_id           TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    starts_at_ns       BIGINT NOT NULL,
    ends_at_ns         BIGINT NOT NULL,
    reporting_currency TEXT NOT NULL
);

CREATE TABLE exchange_rates (
    currency TEXT PRIMARY KEY,
    -- Canonical decimal string, exact.
    rate     TEXT NOT NULL
);

-- The append-only ledger. `position` is assigned by the single writer path under the lock on
-- ledger_head, so positions become visible in order: a reader that has seen position N has seen
-- every position below N.
CREATE TABLE ledger (
    position       BIGINT PRIMARY KEY,
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    transaction_id TEXT NOT NULL,
    store_id       TEXT NOT NULL,
    kind           SMALLINT NOT NULL CHECK (kind IN (1, 2)),
    currency       TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor > 0),
    occurred_at_ns BIGINT NOT NULL,
    -- Empty for sales.
    refund_of      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    received_at_ns BIGINT NOT NULL,
    UNIQUE (site_id, transaction_id)
);
CREATE INDEX ledger_refunds ON ledger (site_id, refund_of) WHERE refund_of <> '';

-- Highest position in the ledger. Every append locks this row first: that serialises writers
-- (across processes) and makes position assignment and commit one step.
CREATE TABLE ledger_head (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    head BIGINT NOT NULL
);
INSERT INTO ledger_head (id, head) VALUES (1, 0);

CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
