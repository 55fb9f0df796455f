-- Approvals of actions whose rule needs more than the seed's single approval: one row per
-- approver, so the same identity can never count twice.
CREATE TABLE approvals (
    action_id   TEXT NOT NULL REFERENCES actions (id),
    approver    TEXT NOT NULL,
    reason      TEXT,
    approved_at TEXT NOT NULL,
    PRIMARY KEY (action_id, approver)
);

-- When a pending action's rule says what happens after its timeout: the instant it applies,
-- and whether it was escalated already. A row stays after the action is decided and is
-- removed by the next look for due approvals.
CREATE TABLE approval_deadlines (
    action_id  TEXT PRIMARY KEY REFERENCES actions (id),
    deadline   TEXT NOT NULL,
    escalated  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX approval_deadlines_due ON approval_deadlines (deadline);

-- The outbox: notifications written with the event that caused them, delivered at least once.
-- `next_attempt_at` is when it may be tried next; a worker that takes one moves it past the
-- delivery's lease, so another takes it only if that worker never finished.
CREATE TABLE notifications (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    action_id       TEXT,
    route           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_action ON notifications (action_id);
