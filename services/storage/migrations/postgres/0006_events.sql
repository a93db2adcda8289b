-- Many events per deployment. Each has its own window, settlement period (closes_at), default
-- baseline and display time zone; windows never overlap (checked by SetEvent under the writer
-- lock). The one event there was becomes the first row, and every ledger row stored so far
-- belongs to it.
CREATE TABLE events (
    event_id           TEXT COLLATE "C" PRIMARY KEY,
    display_name       TEXT NOT NULL,
    starts_at_ns       BIGINT NOT NULL,
    ends_at_ns         BIGINT NOT NULL,
    closes_at_ns       BIGINT NOT NULL,
    reporting_currency TEXT NOT NULL,
    baseline_event_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    time_zone          TEXT NOT NULL DEFAULT '',
    CHECK (starts_at_ns < ends_at_ns AND ends_at_ns <= closes_at_ns)
);

INSERT INTO events (event_id, display_name, starts_at_ns, ends_at_ns, closes_at_ns,
                    reporting_currency)
SELECT event_id, display_name, starts_at_ns, ends_at_ns,
       CASE WHEN ends_at_ns > 9223372036854775807 - 604800000000000 THEN 9223372036854775807
            ELSE ends_at_ns + 604800000000000 END,
       reporting_currency
FROM event;

DROP TABLE event;

-- A constant default fills the existing rows without rewriting them (and without firing the
-- append-only triggers); new rows always name their event.
DO $$
BEGIN
    EXECUTE format(
        'ALTER TABLE ledger ADD COLUMN event_id TEXT COLLATE "C" NOT NULL DEFAULT %L',
        COALESCE((SELECT event_id FROM events LIMIT 1), ''));
END $$;
ALTER TABLE ledger ALTER COLUMN event_id DROP DEFAULT;
