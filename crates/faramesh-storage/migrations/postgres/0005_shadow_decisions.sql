-- Actions a shadow policy would have decided otherwise than the active one: written with the
-- action, read by the shadow report.
CREATE TABLE shadow_disagreements (
    action_id          TEXT PRIMARY KEY REFERENCES actions (id),
    policy_hash        TEXT NOT NULL,
    active_outcome     TEXT NOT NULL,
    shadow_outcome     TEXT NOT NULL,
    shadow_reason_code TEXT NOT NULL,
    shadow_reason      TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX shadow_disagreements_by_policy ON shadow_disagreements (policy_hash, created_at);
