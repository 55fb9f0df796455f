-- The ledger as one Merkle log (RFC 9162): every event, in commit order, is a leaf at its
-- log_index. A leaf's row holds the root of each complete subtree appending it finished, lowest
-- first (its own hash is that of its event's record_hash, read from the event). Any tree head or
-- proof reads a few dozen rows.
CREATE TABLE log_leaves (
    log_index BIGINT PRIMARY KEY,
    event_seq BIGINT NOT NULL UNIQUE,
    nodes     BYTEA NOT NULL
);

-- The tree's right edge, which appending the next leaf needs. Every transaction that writes
-- events locks this row just before it commits, appends its events and writes it back, so the
-- replicas take turns and the log has one order. `backfilled` is false until the events written
-- before this table existed are appended.
CREATE TABLE log_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    size       BIGINT NOT NULL,
    frontier   BYTEA NOT NULL,
    backfilled BOOLEAN NOT NULL
);
INSERT INTO log_state (id, size, frontier, backfilled) VALUES (1, 0, '', false);

-- Signed checkpoints (C2SP signed notes), kept.
CREATE TABLE log_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE FUNCTION faramesh_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the log is append-only';
END;
$$;
CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION faramesh_log_append_only();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION faramesh_log_append_only();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION faramesh_log_append_only();
CREATE TRIGGER log_checkpoints_no_truncate BEFORE TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION faramesh_log_append_only();
