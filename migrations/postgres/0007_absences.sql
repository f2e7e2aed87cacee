-- People away (holiday, sick leave), as they said with `/away`: stall reminders meant for them go to
-- their leads until `until_ms`. One row per person; `/away back` deletes it.
CREATE TABLE absences (
    person     TEXT   PRIMARY KEY,
    until_ms   BIGINT NOT NULL,
    reason     TEXT   NOT NULL,
    set_at_ms  BIGINT NOT NULL
);
