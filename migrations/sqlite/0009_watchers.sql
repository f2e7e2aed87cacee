-- Who watches which handoff (`/handoff watch H-12`): written with the watch's event. The handoff's
-- document holds the list too (to tell its watchers as it moves); this table answers "what do I
-- watch" for `/handoff mine`.
CREATE TABLE watchers (
    handoff_id BIGINT NOT NULL REFERENCES handoffs (id),
    person     TEXT   NOT NULL,
    PRIMARY KEY (handoff_id, person)
);
CREATE INDEX watchers_person ON watchers (person);
