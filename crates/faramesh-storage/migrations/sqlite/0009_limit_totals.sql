-- The running total of each limit and key over its window: what `limit_usage` holds for it,
-- kept up to date as usage is counted and as it leaves the window, so a check costs the same
-- however busy the key is.
CREATE TABLE limit_totals (
    limit_name TEXT NOT NULL,
    usage_key  TEXT NOT NULL,
    total      REAL NOT NULL,
    PRIMARY KEY (limit_name, usage_key)
);
