-- Many events per deployment. Each has its own window, settlement period (closes_at), default
-- baseline and display time zone; windows never overlap (checked by SetEvent under the writer
-- lock). The one event there was becomes the first row, and every ledger row stored so far
-- belongs to it.
CREATE TABLE events (
    event_id           TEXT PRIMARY KEY,
    display_name       TEXT NOT NULL,
    starts_at_ns       INTEGER NOT NULL,
    ends_at_ns         INTEGER NOT NULL,
    closes_at_ns       INTEGER NOT NULL,
    reporting_currency TEXT NOT NULL,
    baseline_event_id  TEXT NOT NULL DEFAULT '',
    time_zone          TEXT NOT NULL DEFAULT '',
    CHECK (starts_at_ns < ends_at_ns AND ends_at_ns <= closes_at_ns)
) STRICT;

INSERT INTO events (event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns,
                    reporting_currency)
SELECT event_id, display_name, starts_at_ns, ends_at_ns,
       CASE WHEN ends_at_ns > 9223372036854775807 - 604800000000000 THEN 9223372036854775807
            ELSE ends_at_ns + 604800000000000 END,
       reporting_currency
FROM event;

DROP TABLE event;

-- The rows stored so far belong to the one event there was: set once, with the append-only
-- trigger lifted for this statement only.
ALTER TABLE ledger ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
DROP TRIGGER ledger_no_update;
UPDATE ledger SET event_id = COALESCE((SELECT event_id FROM events LIMIT 1), '');
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused');
END;
