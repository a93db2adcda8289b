-- Totals the aggregator folds the ledger into, and its checkpoint. Only the aggregator writes
-- them, each apply in one transaction together with applied_position.

CREATE TABLE site_totals (
    site_id        TEXT NOT NULL REFERENCES sites (site_id),
    currency       TEXT NOT NULL,
    sale_count     BIGINT NOT NULL CHECK (sale_count >= 0),
    gross_minor    BIGINT NOT NULL CHECK (gross_minor >= 0),
    refund_count   BIGINT NOT NULL CHECK (refund_count >= 0),
    refunded_minor BIGINT NOT NULL CHECK (refunded_minor >= 0),
    net_minor      BIGINT NOT NULL,
    PRIMARY KEY (site_id, currency)
);

CREATE TABLE hourly_totals (
    site_id       TEXT NOT NULL REFERENCES sites (site_id),
    currency      TEXT NOT NULL,
    hour_start_ns BIGINT NOT NULL,
    sale_count    BIGINT NOT NULL CHECK (sale_count >= 0),
    net_minor     BIGINT NOT NULL,
    PRIMARY KEY (site_id, currency, hour_start_ns)
);

-- applied_position: every ledger row at or below it is in the totals, none above.
-- holder / lease_until_ns: which aggregator is active; others wait as standbys.
CREATE TABLE aggregator_state (
    id               SMALLINT PRIMARY KEY CHECK (id = 1),
    applied_position BIGINT NOT NULL,
    updated_at_ns    BIGINT NOT NULL,
    holder           TEXT NOT NULL,
    lease_until_ns   BIGINT NOT NULL
);
INSERT INTO aggregator_state VALUES (1, 0, 0, '', 0);
