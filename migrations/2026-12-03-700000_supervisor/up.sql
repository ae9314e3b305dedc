-- Supervisor toolkit (issue 24): live supervision records, call outcomes,
-- transcript search, live interim lines on the monitor.

-- Call outcomes: a disposition from the project's list, free tags, notes
-- and a 1-5 rating, set after (or during) the call.
ALTER TABLE sessions ADD COLUMN disposition TEXT;
ALTER TABLE sessions ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN notes TEXT;
ALTER TABLE sessions ADD COLUMN rating SMALLINT CHECK (rating BETWEEN 1 AND 5);
CREATE INDEX sessions_disposition_idx ON sessions (project_id, disposition)
    WHERE disposition IS NOT NULL;
CREATE INDEX sessions_tags_idx ON sessions USING gin (tags);

-- A project's dispositions; a project without a row uses the default list.
CREATE TABLE project_dispositions (
    project_id  BIGINT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    names       TEXT[] NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who supervised a session, in which mode, when: one row per period in one
-- mode (a mode change ends a period and starts the next). At most one live
-- period per supervisor identity and room.
CREATE TABLE supervisions (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id       BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    room_name        TEXT NOT NULL,
    identity         TEXT NOT NULL,
    mode             TEXT NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge', 'take_over')),
    -- Whom a whisper reaches and a take-over mutes (none: the room's agents).
    target_identity  TEXT,
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at         TIMESTAMPTZ
);
CREATE UNIQUE INDEX supervisions_live_key ON supervisions (project_id, room_name, identity)
    WHERE ended_at IS NULL;
CREATE INDEX supervisions_session_idx ON supervisions (session_id, started_at);

-- Transcript search: a tsvector per line, indexed with the project first
-- (btree_gin), so a project's hits never walk another project's postings.
CREATE EXTENSION IF NOT EXISTS btree_gin;
ALTER TABLE transcripts ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;
CREATE INDEX transcripts_search_idx ON transcripts USING gin (project_id, search);

-- Interim transcript lines travel the spine to monitor sockets
-- (`transcript.interim`) but are no webhook event type.
CREATE OR REPLACE FUNCTION voxplane_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (project_id, endpoint_id, event_id)
    SELECT e.project_id, w.id, e.id
    FROM new_events e
    JOIN webhook_endpoints w ON w.project_id = e.project_id AND w.is_active
         AND (cardinality(w.event_types) = 0 OR e.event_type = ANY (w.event_types))
    WHERE e.event_type NOT LIKE 'chat.%' AND e.event_type <> 'transcript.interim';
    RETURN NULL;
END $$;
CREATE INDEX events_interim_idx ON events (created_at) WHERE event_type = 'transcript.interim';
