-- Baton schema (PostgreSQL). Times are Unix milliseconds (BIGINT) so that SQL is shared with SQLite.
CREATE SEQUENCE handoff_numbers;

CREATE TABLE handoffs (
    id            BIGINT PRIMARY KEY,
    seam          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    requester     TEXT   NOT NULL,
    owner         TEXT,
    stall_kind    TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    next_check_ms BIGINT,
    version       BIGINT NOT NULL,
    doc           TEXT   NOT NULL
);
CREATE INDEX handoffs_due ON handoffs (next_check_ms) WHERE next_check_ms IS NOT NULL;
CREATE INDEX handoffs_owner ON handoffs (owner);
CREATE INDEX handoffs_requester ON handoffs (requester);
CREATE INDEX handoffs_stalled ON handoffs (seam) WHERE stall_kind IS NOT NULL;

CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    handoff_id BIGINT NOT NULL REFERENCES handoffs (id),
    at_ms      BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    surface    TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    change     TEXT   NOT NULL
);
CREATE INDEX events_handoff ON events (handoff_id, id);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    handoff_id      BIGINT NOT NULL REFERENCES handoffs (id),
    created_at_ms   BIGINT NOT NULL,
    recipient       TEXT   NOT NULL,
    intent          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    delivered_at_ms BIGINT,
    platform_ref    TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_ms) WHERE delivered_at_ms IS NULL;

CREATE TABLE stall_episodes (
    handoff_id   BIGINT NOT NULL REFERENCES handoffs (id),
    episode      BIGINT NOT NULL,
    seam         TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    PRIMARY KEY (handoff_id, episode)
);
CREATE INDEX stall_episodes_seam ON stall_episodes (seam, opened_at_ms);

-- One row per ladder step fired: the key makes a step fire once per episode.
CREATE TABLE ladder_steps (
    handoff_id  BIGINT NOT NULL REFERENCES handoffs (id),
    episode     BIGINT NOT NULL,
    step        BIGINT NOT NULL,
    action      TEXT   NOT NULL,
    fired_at_ms BIGINT NOT NULL,
    PRIMARY KEY (handoff_id, episode, step)
);

-- Keys of requests already acted on (retried events, double clicks, replays).
CREATE TABLE processed_requests (
    key        TEXT PRIMARY KEY,
    handoff_id BIGINT,
    at_ms      BIGINT NOT NULL
);
