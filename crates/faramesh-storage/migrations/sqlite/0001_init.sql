-- Actions and their append-only, hash-chained ledger events.
CREATE TABLE actions (
    id              TEXT PRIMARY KEY NOT NULL,
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
    demo            INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- Listing is newest first (rowid order), optionally filtered.
CREATE INDEX actions_status ON actions (status);
CREATE INDEX actions_agent ON actions (agent_id);
CREATE INDEX actions_tool ON actions (tool);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;

CREATE TABLE idempotency_keys (
    key       TEXT PRIMARY KEY NOT NULL,
    body_hash TEXT NOT NULL,
    action_id TEXT NOT NULL REFERENCES actions (id)
);
