-- Late figures (issue 28: the late-refunds and late-sales rules), kept by the aggregator's fold
-- and written with the breakdown figures (at their watermark): per (event, site, currency) the
-- value of refunds received at or after the event's end, and of sales received more than an
-- hour after they occurred or after the end. Sums are exact decimal TEXT, as in site_totals.
CREATE TABLE late_totals (
    event_id            TEXT NOT NULL,
    site_id             TEXT NOT NULL REFERENCES sites (site_id),
    currency            TEXT NOT NULL,
    late_refunded_minor TEXT NOT NULL CHECK (late_refunded_minor GLOB '[0-9]*'),
    late_sales_minor    TEXT NOT NULL CHECK (late_sales_minor GLOB '[0-9]*'),
    PRIMARY KEY (event_id, site_id, currency)
) STRICT;

-- Per event, the end its late figures were folded against and the latest receipt folded (see
-- the PostgreSQL migration).
CREATE TABLE late_windows (
    event_id           TEXT PRIMARY KEY,
    ends_at_ns         INTEGER NOT NULL,
    latest_received_ns INTEGER NOT NULL
) STRICT;
