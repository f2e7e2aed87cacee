-- A lead going away may name a cover (`/away until 2026-12-04 cover=dana`), who stands in as lead
-- until `until_ms`: gets the lead's stall reminders and may do what the lead may.
ALTER TABLE absences ADD COLUMN cover TEXT;
