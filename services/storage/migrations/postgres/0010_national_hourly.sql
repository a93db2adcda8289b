-- The national net per (event, currency, UTC hour): every site's hourly totals summed, kept by
-- the aggregator beside them in the same transaction (issue 26), so the leaderboard reads the
-- national curve as a few hundred rows at the same watermark as the rest of its snapshot
-- instead of every site's hourly rows. Derived, never loaded: the aggregator rewrites any row
-- that differs from the per-site rows when it starts, which is how a migrated database gets
-- its rows. `verify` recomputes them from the ledger.
CREATE TABLE national_hourly_totals (
    event_id            TEXT COLLATE "C" NOT NULL,
    currency            TEXT COLLATE "C" NOT NULL,
    hour_start_ns       BIGINT NOT NULL,
    sale_count          BIGINT NOT NULL CHECK (sale_count >= 0),
    net_minor           NUMERIC(39, 0) NOT NULL,
    changed_at_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, currency, hour_start_ns)
);
