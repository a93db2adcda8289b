-- Late figures (issue 28: the late-refunds and late-sales rules), kept by the aggregator's fold
-- and written with the breakdown figures (at their watermark): per (event, site, currency) the
-- value of refunds received at or after the event's end, and of sales received more than an
-- hour after they occurred or after the end. Only keys with a late row have a row.
CREATE TABLE late_totals (
    event_id            TEXT COLLATE "C" NOT NULL,
    site_id             TEXT COLLATE "C" NOT NULL REFERENCES sites (site_id),
    currency            TEXT COLLATE "C" NOT NULL,
    late_refunded_minor NUMERIC(39, 0) NOT NULL CHECK (late_refunded_minor >= 0),
    late_sales_minor    NUMERIC(39, 0) NOT NULL CHECK (late_sales_minor >= 0),
    PRIMARY KEY (event_id, site_id, currency)
);

-- Per event, the end its late figures were folded against and the latest receipt folded: an
-- end moved across a folded receipt makes the aggregator count the event again from the
-- ledger; an event without a row (a database from before this migration) is counted once.
CREATE TABLE late_windows (
    event_id           TEXT COLLATE "C" PRIMARY KEY,
    ends_at_ns         BIGINT NOT NULL,
    latest_received_ns BIGINT NOT NULL
);
