-- Organizers' actions on a site's standing in an event, applied only once a second organizer
-- approves them (issue 28: four eyes), and the holds they apply.
--
-- An action is proposed PENDING and decided once: APPLIED (by `decided_by`, another organizer
-- than `proposed_by`) or REJECTED. A row changes only from PENDING; every proposal and
-- decision is in the audit log as well.
CREATE TABLE admin_actions (
    action_id      TEXT COLLATE "C" PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('hold', 'release')),
    state          TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected')),
    event_id       TEXT COLLATE "C" NOT NULL REFERENCES events (event_id),
    site_id        TEXT COLLATE "C" NOT NULL REFERENCES sites (site_id),
    reason         TEXT NOT NULL,
    proposed_by    TEXT NOT NULL,
    proposed_at_ns BIGINT NOT NULL,
    decided_by     TEXT,
    decided_at_ns  BIGINT,
    decision_note  TEXT NOT NULL DEFAULT '',
    CHECK ((state = 'pending') = (decided_by IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> proposed_by)
);
CREATE INDEX admin_actions_event ON admin_actions (event_id, proposed_at_ns);
-- At most one pending action per (event, site): the write that proposes one also checks under
-- the site's row lock; this is the schema's own guard.
CREATE UNIQUE INDEX admin_actions_one_pending ON admin_actions (event_id, site_id)
    WHERE state = 'pending';

-- The sites held in an event: off its public ranking, still in its national figures.
CREATE TABLE site_holds (
    event_id     TEXT COLLATE "C" NOT NULL REFERENCES events (event_id),
    site_id      TEXT COLLATE "C" NOT NULL REFERENCES sites (site_id),
    action_id    TEXT COLLATE "C" NOT NULL REFERENCES admin_actions (action_id),
    held_at_ns   BIGINT NOT NULL,
    PRIMARY KEY (event_id, site_id)
);

-- Each event's integrity thresholds as the organizers set them: only the fields they set, as
-- the proto3 JSON of `IntegrityPolicy` (every other field is the default of the release that
-- reads it).
CREATE TABLE integrity_policies (
    event_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES events (event_id),
    overrides_json TEXT NOT NULL,
    updated_at_ns  BIGINT NOT NULL,
    updated_by     TEXT NOT NULL
);

-- Integrity flags (issue 28): a rule raised for a site in an event, with the evaluation it was
-- raised on (statistic, threshold, the nation's figure as exact decimals, every input as JSON,
-- the ledger position read). A flag that stops holding keeps its row with the position that
-- showed it (cleared_at_watermark); at most one flag per (event, site, rule) is still holding.
-- Organizers review them (state, note).
CREATE TABLE integrity_flags (
    flag_id              TEXT COLLATE "C" PRIMARY KEY,
    event_id             TEXT COLLATE "C" NOT NULL REFERENCES events (event_id),
    site_id              TEXT COLLATE "C" NOT NULL REFERENCES sites (site_id),
    rule                 TEXT NOT NULL,
    rule_version         BIGINT NOT NULL,
    severity             TEXT NOT NULL,
    state                TEXT NOT NULL
        CHECK (state IN ('open', 'under_review', 'cleared', 'confirmed')),
    statistic            TEXT NOT NULL,
    threshold            TEXT NOT NULL,
    national             TEXT NOT NULL,
    inputs_json          TEXT NOT NULL,
    watermark            BIGINT NOT NULL,
    raised_at_ns         BIGINT NOT NULL,
    cleared_at_watermark BIGINT,
    reviewed_by          TEXT,
    reviewed_at_ns       BIGINT,
    note                 TEXT NOT NULL DEFAULT '',
    -- The seed of the sample of transaction ids the site is asked to justify (its 64 bits).
    sample_seed          BIGINT NOT NULL
);
CREATE UNIQUE INDEX integrity_flags_holding ON integrity_flags (event_id, site_id, rule)
    WHERE cleared_at_watermark IS NULL;
CREATE INDEX integrity_flags_event ON integrity_flags (event_id, raised_at_ns);

-- The last evaluation of each event: its position and how many sites it could not decide.
CREATE TABLE integrity_evaluations (
    event_id        TEXT COLLATE "C" PRIMARY KEY REFERENCES events (event_id),
    watermark       BIGINT NOT NULL,
    evaluated_at_ns BIGINT NOT NULL,
    undecided_sites BIGINT NOT NULL
);

-- Each ended event's places by gross at its end, taken at the first evaluation after it (the
-- settlement rank compares the places by net later with them). Place 0 is the header (no
-- site): the first process to store it takes the ranking, the others keep it.
CREATE TABLE integrity_end_rankings (
    event_id    TEXT COLLATE "C" NOT NULL REFERENCES events (event_id),
    place       BIGINT NOT NULL CHECK (place >= 0),
    site_id     TEXT COLLATE "C" REFERENCES sites (site_id),
    watermark   BIGINT NOT NULL,
    taken_at_ns BIGINT NOT NULL,
    PRIMARY KEY (event_id, place),
    CHECK ((place = 0) = (site_id IS NULL))
);
