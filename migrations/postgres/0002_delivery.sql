-- Escalation engine: delivery leases, dead letters, digests without a handoff, platform message
-- references, once-per-schedule job runs, skipped ladder steps.
ALTER TABLE outbox ALTER COLUMN handoff_id DROP NOT NULL;
-- Set while a worker is sending (the row's next_attempt_ms is then its lease); still set when the
-- row comes back after a crash, which tells the next worker the first attempt's outcome is unknown.
ALTER TABLE outbox ADD COLUMN claimed_at_ms BIGINT;
ALTER TABLE outbox ADD COLUMN dead_at_ms BIGINT;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (next_attempt_ms) WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL;

ALTER TABLE ladder_steps ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;

-- The platform message a handoff's card lives in, per recipient, so later cards edit it.
CREATE TABLE message_refs (
    handoff_id    BIGINT NOT NULL REFERENCES handoffs (id),
    recipient     TEXT   NOT NULL,
    platform_ref  TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (handoff_id, recipient)
);

-- One row per periodic job run: the key makes each scheduled instant run once across replicas.
CREATE TABLE job_runs (
    job             TEXT   NOT NULL,
    scheduled_at_ms BIGINT NOT NULL,
    ran_at_ms       BIGINT NOT NULL,
    PRIMARY KEY (job, scheduled_at_ms)
);

CREATE INDEX handoffs_seam_state ON handoffs (seam, state);
