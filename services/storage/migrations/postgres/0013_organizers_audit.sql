-- Organizers by name and the audit log (issue 27).
--
-- Named organizers authenticate by their own secret, stored only as its SHA-256 (hex), like an
-- API key's. The organizer named `bootstrap` is the token from configuration: it has no row.
CREATE TABLE organizers (
    name          TEXT PRIMARY KEY,
    secret_hash   TEXT NOT NULL UNIQUE,
    created_at_ns BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at_ns BIGINT
);

-- Every admin call that changed something (and every refused one), in the transaction of the
-- change. Positions 1, 2, 3, ... without gaps: each writer locks `audit_head` last in its
-- transaction, reads the last position and sha256, appends the next and moves the head.
CREATE TABLE audit_log (
    position     BIGINT PRIMARY KEY,
    at_ns        BIGINT NOT NULL,
    organizer    TEXT NOT NULL,
    rpc          TEXT NOT NULL,
    request_json TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    prev_sha256  TEXT NOT NULL,
    sha256       TEXT NOT NULL
);
CREATE INDEX audit_log_organizer ON audit_log (organizer, position);

CREATE TABLE audit_head (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL,
    sha256   TEXT NOT NULL
);
INSERT INTO audit_head (id, position, sha256)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only, as the ledger.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
