-- The national net per (event, currency, UTC hour): every site's hourly totals summed, kept by
-- the aggregator beside them in the same transaction (issue 26), so the leaderboard reads the
-- national curve as a few hundred rows at the same watermark as the rest of its snapshot
-- instead of every site's hourly rows. Derived, never loaded: the aggregator rewrites any row
-- that differs from the per-site rows when it starts, which is how a migrated database gets
-- its rows. `verify` recomputes them from the ledger. Sums are exact decimal TEXT.
CREATE TABLE national_hourly_totals (
    event_id            TEXT NOT NULL,
    currency            TEXT NOT NULL,
    hour_start_ns       INTEGER NOT NULL,
    sale_count          INTEGER NOT NULL CHECK (sale_count >= 0),
    net_minor           TEXT NOT NULL CHECK (net_minor GLOB '[0-9]*' OR net_minor GLOB '-[0-9]*'),
    changed_at_position INTEGER NOT NULL,
    PRIMARY KEY (event_id, currency, hour_start_ns)
) STRICT;
