-- Totals and exchange rates belong to an event. What exists belongs to the one event there was
-- (an event-less deployment's rates are kept under '' and apply to no event).
DO $$
DECLARE
    first TEXT := COALESCE((SELECT event_id FROM events ORDER BY starts_at_ns LIMIT 1), '');
BEGIN
    EXECUTE format(
        'ALTER TABLE site_totals ADD COLUMN event_id TEXT COLLATE "C" NOT NULL DEFAULT %L', first);
    EXECUTE format(
        'ALTER TABLE hourly_totals ADD COLUMN event_id TEXT COLLATE "C" NOT NULL DEFAULT %L', first);
    EXECUTE format(
        'ALTER TABLE exchange_rates ADD COLUMN event_id TEXT COLLATE "C" NOT NULL DEFAULT %L', first);
END $$;

ALTER TABLE site_totals
    ALTER COLUMN event_id DROP DEFAULT,
    DROP CONSTRAINT site_totals_pkey,
    ADD PRIMARY KEY (event_id, site_id, currency);
ALTER TABLE hourly_totals
    ALTER COLUMN event_id DROP DEFAULT,
    DROP CONSTRAINT hourly_totals_pkey,
    ADD PRIMARY KEY (event_id, site_id, currency, hour_start_ns);
ALTER TABLE exchange_rates
    ALTER COLUMN event_id DROP DEFAULT,
    DROP CONSTRAINT exchange_rates_pkey,
    ADD PRIMARY KEY (event_id, currency);
