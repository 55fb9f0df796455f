-- Actions and their append-only, hash-chained ledger events. JSON values are kept as text,
-- exactly as serialized (key order and number spelling preserved), like the SQLite schema.
CREATE TABLE actions (
    pos             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL,
    tool            TEXT NOT NULL,
    operation       TEXT NOT NULL,
    params          TEXT NOT NULL,
    context         TEXT NOT NULL,
    status          TEXT NOT NULL,
    decision        TEXT,
    reason          TEXT,
    risk_level      TEXT,
    approval_token  TEXT,
    policy_version  TEXT,
    outcome         TEXT,
    reason_code     TEXT,
    reason_details  TEXT,
    request_hash    TEXT,
    policy_hash     TEXT,
    profile_id      TEXT,
    profile_version TEXT,
    profile_hash    TEXT,
    runtime_version TEXT,
    provenance_id   TEXT,
    result          TEXT,
    demo            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX actions_status ON actions (status, pos);
CREATE INDEX actions_agent ON actions (agent_id, pos);
CREATE INDEX actions_tool ON actions (tool, pos);

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    action_id   TEXT NOT NULL REFERENCES actions (id),
    event_type  TEXT NOT NULL,
    meta        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    prev_hash   TEXT,
    record_hash TEXT NOT NULL
);
CREATE INDEX events_action ON events (action_id, seq);

-- The ledger is append-only: the database itself refuses to change or remove an event.
CREATE FUNCTION faramesh_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger events are append-only';
END;
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION faramesh_events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION faramesh_events_append_only();

CREATE TABLE idempotency_keys (
    key       TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    action_id TEXT NOT NULL REFERENCES actions (id)
);

CREATE TABLE api_tokens (
    pos          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
