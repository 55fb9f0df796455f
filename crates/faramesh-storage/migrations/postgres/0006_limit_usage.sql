-- What each action counted against each limit, for sliding-window rate limits and budgets.
-- Rows older than their limit's window are removed as usage is counted.
CREATE TABLE limit_usage (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    limit_name TEXT NOT NULL,
    usage_key  TEXT NOT NULL,
    amount     DOUBLE PRECISION NOT NULL,
    action_id  TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX limit_usage_window ON limit_usage (limit_name, usage_key, at);
CREATE INDEX limit_usage_action ON limit_usage (action_id);
