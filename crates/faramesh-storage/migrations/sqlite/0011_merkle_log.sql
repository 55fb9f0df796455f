-- The ledger as one Merkle log (RFC 9162): every event, in ledger order, is a leaf at its
-- log_index. A leaf's row holds the root of each complete subtree appending it finished, lowest
-- first (its own hash is that of its event's record_hash, read from the event). Any tree head or
-- proof reads a few dozen rows.
CREATE TABLE log_leaves (
    log_index INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL UNIQUE,
    nodes     BLOB NOT NULL
);

-- The tree's right edge, which appending needs, is kept by the one writer between batches and
-- read back from the leaves at start, so a batch writes nothing but its new leaves.

-- Signed checkpoints (C2SP signed notes), kept.
CREATE TABLE log_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
