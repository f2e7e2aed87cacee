-- Escalation engine: delivery leases, dead letters, digests without a handoff, platform message
-- references, once-per-schedule job runs, skipped ladder steps.
-- SQLite cannot drop NOT NULL in place, so the outbox is rebuilt.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id      INTEGER REFERENCES handoffs (id),
    created_at_ms   INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    intent          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    platform_ref    TEXT,
    last_error      TEXT,
    claimed_at_ms   INTEGER,
    dead_at_ms      INTEGER
);
INSERT INTO outbox_new (id, handoff_id, created_at_ms, recipient, intent, attempts, next_attempt_ms, delivered_at_ms, platform_ref, last_error)
    SELECT id, handoff_id, created_at_ms, recipient, intent, attempts, next_attempt_ms, delivered_at_ms, platform_ref, last_error FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (next_attempt_ms) WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL;

ALTER TABLE ladder_steps ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;

CREATE TABLE message_refs (
    handoff_id    INTEGER NOT NULL REFERENCES handoffs (id),
    recipient     TEXT    NOT NULL,
    platform_ref  TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (handoff_id, recipient)
);

CREATE TABLE job_runs (
    job             TEXT    NOT NULL,
    scheduled_at_ms INTEGER NOT NULL,
    ran_at_ms       INTEGER NOT NULL,
    PRIMARY KEY (job, scheduled_at_ms)
);

CREATE INDEX handoffs_seam_state ON handoffs (seam, state);
