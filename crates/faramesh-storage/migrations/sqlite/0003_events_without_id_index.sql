-- Event ids are random UUIDs: a unique index on them put every insert at a random place in a
-- growing index, which made large ledgers slow to write. `seq` identifies an event; the id
-- stays, unindexed. The table is rebuilt because SQLite cannot drop a UNIQUE constraint.
CREATE TABLE events_rebuilt (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL,
    action_id   TEXT NOT NULL REFERENCES actions (id),
    event_type  TEXT NOT NULL,
    meta        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    prev_hash   TEXT,
    record_hash TEXT NOT NULL
);
INSERT INTO events_rebuilt (seq, id, action_id, event_type, meta, created_at, prev_hash, record_hash)
    SELECT seq, id, action_id, event_type, meta, created_at, prev_hash, record_hash FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_action ON events (action_id, seq);

-- The ledger is append-only: the database itself refuses to change or remove an event.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
