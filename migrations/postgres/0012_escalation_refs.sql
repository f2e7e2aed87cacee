-- The platform messages that carried a stall episode's escalations, by handoff and recipient:
-- when the stall ends they are edited to say it was answered, without their buttons, and forgotten.
CREATE TABLE escalation_refs (
    handoff_id      BIGINT NOT NULL REFERENCES handoffs (id),
    recipient       TEXT   NOT NULL,
    platform_ref    TEXT   NOT NULL,
    delivered_at_ms BIGINT NOT NULL,
    PRIMARY KEY (handoff_id, recipient, platform_ref)
);
