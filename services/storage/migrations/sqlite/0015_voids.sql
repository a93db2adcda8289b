-- Organizers' adjustments (issue 28: AdjustTransactions): see the PostgreSQL migration. SQLite
-- cannot change a CHECK constraint in place, so the ledger and the actions are rebuilt (the
-- documented procedure: a new table, the rows copied, the old one dropped, the new one
-- renamed, its indexes and triggers made again), once, in this migration's transaction.

CREATE TABLE ledger_new (
    position       INTEGER PRIMARY KEY,
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    transaction_id TEXT NOT NULL,
    store_id       TEXT NOT NULL,
    kind           INTEGER NOT NULL CHECK (kind IN (1, 2, 3, 4)),
    currency       TEXT NOT NULL,
    amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
    occurred_at_ns INTEGER NOT NULL,
    refund_of      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    received_at_ns INTEGER NOT NULL,
    event_id       TEXT NOT NULL DEFAULT '',
    brand          TEXT NOT NULL DEFAULT '',
    category       TEXT NOT NULL DEFAULT '',
    origin         INTEGER NOT NULL DEFAULT 0 CHECK (origin IN (0, 1, 2)),
    UNIQUE (site_id, transaction_id)
) STRICT;
INSERT INTO ledger_new (position, site_id, transaction_id, store_id, kind, currency,
    amount_minor, occurred_at_ns, refund_of, key_id, received_at_ns, event_id, brand, category,
    origin)
SELECT position, site_id, transaction_id, store_id, kind, currency, amount_minor,
    occurred_at_ns, refund_of, key_id, received_at_ns, event_id, brand, category, origin
FROM ledger ORDER BY position;
-- Dropping a table drops its triggers first: the append-only triggers do not fire.
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_refunds ON ledger (site_id, refund_of) WHERE refund_of <> '';
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: DELETE refused');
END;

-- The actions, with the adjustment's kind and columns; site_holds references them, so it is
-- rebuilt beside them (its new table references the new actions table, whose rename carries
-- the reference).
CREATE TABLE admin_actions_new (
    action_id        TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('hold', 'release', 'adjust')),
    state            TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected')),
    event_id         TEXT NOT NULL REFERENCES events (event_id),
    site_id          TEXT NOT NULL REFERENCES sites (site_id),
    reason           TEXT NOT NULL,
    proposed_by      TEXT NOT NULL,
    proposed_at_ns   INTEGER NOT NULL,
    decided_by       TEXT,
    decided_at_ns    INTEGER,
    decision_note    TEXT NOT NULL DEFAULT '',
    transaction_ids  TEXT NOT NULL DEFAULT '',
    flag_id          TEXT NOT NULL DEFAULT '',
    voided_rows      INTEGER NOT NULL DEFAULT 0,
    through_position INTEGER NOT NULL DEFAULT 0,
    CHECK ((state = 'pending') = (decided_by IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> proposed_by)
) STRICT;
INSERT INTO admin_actions_new (action_id, kind, state, event_id, site_id, reason, proposed_by,
    proposed_at_ns, decided_by, decided_at_ns, decision_note)
SELECT action_id, kind, state, event_id, site_id, reason, proposed_by, proposed_at_ns,
    decided_by, decided_at_ns, decision_note
FROM admin_actions;
CREATE TABLE site_holds_new (
    event_id     TEXT NOT NULL REFERENCES events (event_id),
    site_id      TEXT NOT NULL REFERENCES sites (site_id),
    action_id    TEXT NOT NULL REFERENCES admin_actions_new (action_id),
    held_at_ns   INTEGER NOT NULL,
    PRIMARY KEY (event_id, site_id)
) STRICT;
INSERT INTO site_holds_new (event_id, site_id, action_id, held_at_ns)
SELECT event_id, site_id, action_id, held_at_ns FROM site_holds;
DROP TABLE site_holds;
DROP TABLE admin_actions;
ALTER TABLE admin_actions_new RENAME TO admin_actions;
ALTER TABLE site_holds_new RENAME TO site_holds;
CREATE INDEX admin_actions_event ON admin_actions (event_id, proposed_at_ns);
CREATE UNIQUE INDEX admin_actions_one_pending ON admin_actions (event_id, site_id)
    WHERE state = 'pending';
