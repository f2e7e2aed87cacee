-- Baton schema (SQLite). Times are Unix milliseconds; DML is shared with the PostgreSQL store.
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('handoff', 0);

CREATE TABLE handoffs (
    id            INTEGER PRIMARY KEY,
    seam          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    requester     TEXT   NOT NULL,
    owner         TEXT,
    stall_kind    TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    next_check_ms INTEGER,
    version       INTEGER NOT NULL,
    doc           TEXT   NOT NULL
);
CREATE INDEX handoffs_due ON handoffs (next_check_ms) WHERE next_check_ms IS NOT NULL;
CREATE INDEX handoffs_owner ON handoffs (owner);
CREATE INDEX handoffs_requester ON handoffs (requester);
CREATE INDEX handoffs_stalled ON handoffs (seam) WHERE stall_kind IS NOT NULL;

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id INTEGER NOT NULL REFERENCES handoffs (id),
    at_ms      INTEGER NOT NULL,
    actor      TEXT   NOT NULL,
    surface    TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    change     TEXT   NOT NULL
);
CREATE INDEX events_handoff ON events (handoff_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id      INTEGER NOT NULL REFERENCES handoffs (id),
    created_at_ms   INTEGER NOT NULL,
    recipient       TEXT   NOT NULL,
    intent          TEXT   NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    platform_ref    TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_ms) WHERE delivered_at_ms IS NULL;

CREATE TABLE stall_episodes (
    handoff_id   INTEGER NOT NULL REFERENCES handoffs (id),
    episode      INTEGER NOT NULL,
    seam         TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER,
    PRIMARY KEY (handoff_id, episode)
);
CREATE INDEX stall_episodes_seam ON stall_episodes (seam, opened_at_ms);

-- One row per ladder step fired: the key makes a step fire once per episode.
CREATE TABLE ladder_steps (
    handoff_id  INTEGER NOT NULL REFERENCES handoffs (id),
    episode     INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    action      TEXT   NOT NULL,
    fired_at_ms INTEGER NOT NULL,
    PRIMARY KEY (handoff_id, episode, step)
);

-- Keys of requests already acted on (retried events, double clicks, replays).
CREATE TABLE processed_requests (
    key        TEXT PRIMARY KEY,
    handoff_id INTEGER,
    at_ms      INTEGER NOT NULL
);
