-- Organizers by name and the audit log (issue 27).
--
-- Named organizers authenticate by their own secret, stored only as its SHA-256 (hex), like an
-- API key's. The organizer named `bootstrap` is the token from configuration: it has no row.
CREATE TABLE organizers (
    name          TEXT PRIMARY KEY,
    secret_hash   TEXT NOT NULL UNIQUE,
    created_at_ns INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at_ns INTEGER
) STRICT;

-- Every admin call that changed something (and every refused one), in the transaction of the
-- change (every admin write holds the writer lock: BEGIN IMMEDIATE). Positions 1, 2, 3, ...
-- without gaps.
CREATE TABLE audit_log (
    position     INTEGER PRIMARY KEY,
    at_ns        INTEGER NOT NULL,
    organizer    TEXT NOT NULL,
    rpc          TEXT NOT NULL,
    request_json TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    prev_sha256  TEXT NOT NULL,
    sha256       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_organizer ON audit_log (organizer, position);

CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    sha256   TEXT NOT NULL
) STRICT;
INSERT INTO audit_head (id, position, sha256)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only, as the ledger.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused');
END;
