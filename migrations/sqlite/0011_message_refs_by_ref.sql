-- A reply in a Slack thread names the thread by its parent message's ts: finding which handoff's
-- recalibration thread it is reads message_refs by platform_ref.
CREATE INDEX message_refs_by_ref ON message_refs (platform_ref);
