-- Recorded recalibration and post-mortem artifacts (for stall history: categories, assumptions),
-- and the follow-ups they agreed.
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id  INTEGER NOT NULL REFERENCES handoffs (id),
    episode     INTEGER,
    playbook    TEXT   NOT NULL,
    category    TEXT   NOT NULL,
    assumption  TEXT   NOT NULL,
    decision    TEXT   NOT NULL,
    fields      TEXT   NOT NULL,
    recorded_by TEXT   NOT NULL,
    at_ms       INTEGER NOT NULL
);
CREATE INDEX artifacts_category ON artifacts (category, at_ms);

CREATE TABLE follow_ups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id INTEGER NOT NULL REFERENCES handoffs (id),
    owner      TEXT   NOT NULL,
    due        TEXT   NOT NULL,
    what       TEXT   NOT NULL,
    done_at_ms INTEGER
);
CREATE INDEX follow_ups_owner ON follow_ups (owner) WHERE done_at_ms IS NULL;
