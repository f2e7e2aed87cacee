-- Stall history: the facts reports group and filter by, kept on the handoff row so a 90-day report
-- reads indexes over handoffs and episodes, never the event log.
ALTER TABLE handoffs ADD COLUMN tier TEXT;
ALTER TABLE handoffs ADD COLUMN accepted_at_ms BIGINT;
ALTER TABLE handoffs ADD COLUMN closed_at_ms BIGINT;

UPDATE handoffs SET tier = json_extract(doc, '$.tier');
UPDATE handoffs SET accepted_at_ms = (SELECT MIN(at_ms) FROM events e WHERE e.handoff_id = handoffs.id AND e.kind = 'accepted');
UPDATE handoffs SET closed_at_ms = updated_at_ms WHERE state IN ('done', 'cancelled');

CREATE INDEX handoffs_seam_created ON handoffs (seam, created_at_ms);
CREATE INDEX handoffs_seam_accepted ON handoffs (seam, accepted_at_ms) WHERE accepted_at_ms IS NOT NULL;
CREATE INDEX handoffs_seam_closed ON handoffs (seam, closed_at_ms) WHERE closed_at_ms IS NOT NULL;
CREATE INDEX stall_episodes_seam_closed ON stall_episodes (seam, closed_at_ms) WHERE closed_at_ms IS NOT NULL;
CREATE INDEX artifacts_handoff ON artifacts (handoff_id, episode);
