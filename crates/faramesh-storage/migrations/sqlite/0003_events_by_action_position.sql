-- Events were indexed by their random UUID (unique) and by their action's random UUID, so
-- every insert landed at random places in two growing indexes and large ledgers became slow to
-- write. Now `seq` identifies an event (its id stays, unindexed) and events are found through
-- `action_pos`, the action's rowid, which grows with every new action, so inserts append.
-- The table is rebuilt because SQLite cannot drop a UNIQUE constraint.
CREATE TABLE events_rebuilt (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL,
    action_id   TEXT NOT NULL REFERENCES actions (id),
    action_pos  INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    meta        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    prev_hash   TEXT,
    record_hash TEXT NOT NULL
);
INSERT INTO events_rebuilt (seq, id, action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash)
    SELECT e.seq, e.id, e.action_id, a.rowid, e.event_type, e.meta, e.created_at, e.prev_hash, e.record_hash
    FROM events e JOIN actions a ON a.id = e.action_id ORDER BY e.seq;
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_action ON events (action_pos, seq);

-- The ledger is append-only: the database itself refuses to change or remove an event.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
