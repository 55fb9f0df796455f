-- The ledger as one Merkle log (RFC 9162): every event, in ledger order, is a leaf at its
-- log_index. A leaf's row holds the hashes appending it stored: its leaf hash, then the root of
-- each complete subtree it finished, lowest first. Any tree head or proof reads a few dozen rows.
CREATE TABLE log_leaves (
    log_index INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL UNIQUE,
    hashes    BLOB NOT NULL
);

-- The tree's right edge, which appending the next leaf needs: its size, the last event
-- appended, and the roots of its complete subtrees. Written in the transaction of the events.
CREATE TABLE log_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    frontier BLOB NOT NULL
);
INSERT INTO log_state (id, size, last_seq, frontier) VALUES (1, 0, 0, x'');

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
