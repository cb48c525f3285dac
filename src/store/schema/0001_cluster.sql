-- Cluster mode's state. Everything a files-mode installation keeps in JSON documents (htpasswd,
-- users.json, grants.json, robots.json, retention.json, gc.json) is one row each, byte for byte,
-- so both modes share one format and one set of rules; what many replicas write at once (the
-- audit chain, event ids, failed logins, heartbeats) has tables of its own.

CREATE SEQUENCE document_versions;

CREATE TABLE documents (
    name    text PRIMARY KEY,
    body    bytea NOT NULL,
    -- From document_versions on every write: a replica re-reads a document when it changes.
    version bigint NOT NULL
);

CREATE TABLE audit_log (
    seq  bigint PRIMARY KEY,
    -- The audit.log line exactly (text, not jsonb: jsonb would reorder the hashed bytes).
    line text NOT NULL,
    hash text NOT NULL
);

-- The chain is evidence: no row is ever changed or removed, whoever owns the table.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: entries cannot be changed or deleted';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- One row per replica that ever ran: liveness, and the latest expiry of the push/delete
-- registry tokens it issued (a garbage collection waits for every replica's).
CREATE TABLE replicas (
    id                 text PRIMARY KEY,
    heartbeat_at       timestamptz NOT NULL,
    write_tokens_until timestamptz
);

-- The one maintenance state of the cluster: while frozen_by is set no replica grants push or
-- delete. The row is locked by whoever reads it to issue a write token, so a freeze and a
-- token issued at the same moment are ordered.
CREATE TABLE maintenance (
    id        integer PRIMARY KEY CHECK (id = 1),
    frozen_by text,
    job_id    text,
    since     timestamptz
);
INSERT INTO maintenance (id) VALUES (1);

-- Registry notification ids already recorded (any replica may receive a retry).
CREATE TABLE seen_events (
    id      text PRIMARY KEY,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seen_events_by_age ON seen_events (seen_at);

-- Failed authentications per key (a hash of the user or client address), across replicas.
CREATE TABLE auth_failures (
    key        text PRIMARY KEY,
    failures   integer NOT NULL,
    last_at    timestamptz NOT NULL
);
