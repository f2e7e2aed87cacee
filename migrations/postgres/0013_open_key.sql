-- What no other open handoff on its seam may hold while it is open: the values of the seam's
-- `one_open_per` fields (NULL once it is closed, or when its seam keys on nothing). Written with
-- every save; `baton serve` recomputes it for open handoffs at each start and reload, as the model
-- may key a seam on other fields. Not unique: handoffs made before a seam was keyed may share it.
ALTER TABLE handoffs ADD COLUMN open_key TEXT;
CREATE INDEX handoffs_open_key ON handoffs (seam, open_key) WHERE open_key IS NOT NULL;
