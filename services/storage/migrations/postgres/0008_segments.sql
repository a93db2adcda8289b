-- What a transaction sold (issue 13): optional brand, category and origin on every ledger row
-- (a refund carries its sale's), and the breakdown totals the aggregator keeps from them.
-- Existing rows have no segment: they fall under the key '' of every dimension.
ALTER TABLE ledger
    ADD COLUMN brand TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN category TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN origin SMALLINT NOT NULL DEFAULT 0 CHECK (origin IN (0, 1, 2));

-- Each site's figures per breakdown key (dimension 1 brand, 2 category, 3 origin). Rows are
-- updated in place all day: pages keep room for the new version (fillfactor), so an update
-- stays on its page without touching the index (HOT).
CREATE TABLE segment_site_totals (
    event_id       TEXT COLLATE "C" NOT NULL,
    site_id        TEXT COLLATE "C" NOT NULL REFERENCES sites (site_id),
    dimension      SMALLINT NOT NULL CHECK (dimension IN (1, 2, 3)),
    key            TEXT COLLATE "C" NOT NULL,
    currency       TEXT COLLATE "C" NOT NULL,
    sale_count     BIGINT NOT NULL CHECK (sale_count >= 0),
    gross_minor    NUMERIC(39, 0) NOT NULL CHECK (gross_minor >= 0),
    refund_count   BIGINT NOT NULL CHECK (refund_count >= 0),
    refunded_minor NUMERIC(39, 0) NOT NULL CHECK (refunded_minor >= 0),
    PRIMARY KEY (event_id, site_id, dimension, key, currency)
) WITH (fillfactor = 70);

-- National figures per breakdown key and currency, with the key's site count, and the applied
-- position at which the row last changed: the leaderboard reads only what changed since its
-- last read. The aggregator derives these from the per-site rows (and rewrites any that differ
-- when it starts, which is how the rows migrated below get their national figures).
CREATE TABLE segment_totals (
    event_id            TEXT COLLATE "C" NOT NULL,
    dimension           SMALLINT NOT NULL CHECK (dimension IN (1, 2, 3)),
    key                 TEXT COLLATE "C" NOT NULL,
    currency            TEXT COLLATE "C" NOT NULL,
    sale_count          BIGINT NOT NULL CHECK (sale_count >= 0),
    gross_minor         NUMERIC(39, 0) NOT NULL CHECK (gross_minor >= 0),
    refund_count        BIGINT NOT NULL CHECK (refund_count >= 0),
    refunded_minor      NUMERIC(39, 0) NOT NULL CHECK (refunded_minor >= 0),
    site_count          INTEGER NOT NULL CHECK (site_count >= 0),
    changed_at_position BIGINT NOT NULL,
    PRIMARY KEY (event_id, dimension, key, currency)
) WITH (fillfactor = 70);
CREATE INDEX segment_totals_changed ON segment_totals (event_id, changed_at_position);

-- What was folded before segments existed: under '' in every dimension.
INSERT INTO segment_site_totals
SELECT t.event_id, t.site_id, d.dimension, '', t.currency, t.sale_count, t.gross_minor,
       t.refund_count, t.refunded_minor
FROM site_totals t CROSS JOIN (VALUES (1), (2), (3)) AS d (dimension);
