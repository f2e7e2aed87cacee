-- Stall history rolled up per UTC day: how many durations fell in each histogram bucket, per
-- metric (accept, opened, unblock, done), seam and tier. Kept in the transaction of the change it
-- counts (Store::save), so a 90-day report reads a few thousand rows, not every handoff. Rows
-- written before this table existed are rolled up once by the binary (Store::rebuild_rollups).
CREATE TABLE rollups (
    metric TEXT   NOT NULL,
    seam   TEXT   NOT NULL,
    day    BIGINT NOT NULL,
    tier   TEXT   NOT NULL,
    bucket BIGINT NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (metric, seam, day, tier, bucket)
);

-- Recorded categories by seam, so ranking them reads the artifacts of the seams asked about only.
ALTER TABLE artifacts ADD COLUMN seam TEXT;
UPDATE artifacts SET seam = (SELECT h.seam FROM handoffs h WHERE h.id = artifacts.handoff_id);
CREATE INDEX artifacts_seam ON artifacts (seam, at_ms);
