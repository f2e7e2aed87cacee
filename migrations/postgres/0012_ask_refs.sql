-- The platform messages that asked for something about a handoff, by recipient: to act on it as
-- it stands (`about` = 'act': a stall's escalations, a heads-up, a notice with buttons), or a
-- recalibration thread's requests for its record ('recalibration'). When the handoff moves on or the
-- recalibration is recorded they are edited (`intent`, the message as sent: its text followed by
-- what answered it, without buttons) and forgotten.
CREATE TABLE ask_refs (
    handoff_id      BIGINT NOT NULL REFERENCES handoffs (id),
    recipient       TEXT   NOT NULL,
    platform_ref    TEXT   NOT NULL,
    about           TEXT   NOT NULL,
    intent          TEXT   NOT NULL,
    delivered_at_ms BIGINT NOT NULL,
    PRIMARY KEY (handoff_id, recipient, platform_ref)
);
