-- Discord accounts linked to configured people (one person, one owner on both platforms), and the
-- one-time codes that prove a link.
CREATE TABLE identity_links (
    platform      TEXT   NOT NULL,
    platform_user TEXT   NOT NULL,
    person        TEXT   NOT NULL,
    linked_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (platform, platform_user)
);

CREATE TABLE link_codes (
    code          TEXT   PRIMARY KEY,
    platform      TEXT   NOT NULL,
    platform_user TEXT   NOT NULL,
    person        TEXT   NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX link_codes_user ON link_codes (platform, platform_user);

-- Messages to one recipient about one handoff go out in order, across replicas: a message is
-- claimed only when no earlier one for the same pair is still pending (see Store::claim_outbox).
CREATE INDEX outbox_order ON outbox (recipient, handoff_id, id) WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL;
