-- Call sessions, their transcripts, and priced usage.
CREATE TABLE sessions (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Full (prefixed) LiveKit room name.
    room_name        TEXT NOT NULL,
    agent_config_id  BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    caller_identity  TEXT,
    session_type     TEXT NOT NULL DEFAULT 'voice' CHECK (session_type IN ('voice', 'sip')),
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed')),
    metadata         JSONB NOT NULL DEFAULT '{}'::jsonb,
    summary          TEXT,
    duration_seconds INTEGER,
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at         TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- At most one active session per room.
CREATE UNIQUE INDEX sessions_one_active_per_room ON sessions (project_id, room_name) WHERE status = 'active';
CREATE INDEX sessions_project_started_idx ON sessions (project_id, started_at DESC, id DESC);
CREATE INDEX sessions_agent_idx ON sessions (agent_config_id) WHERE status = 'active';

CREATE TABLE transcripts (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id   BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    speaker      TEXT NOT NULL CHECK (speaker IN ('agent', 'user', 'system')),
    content      TEXT NOT NULL CHECK (char_length(content) > 0),
    timestamp_ms BIGINT NOT NULL DEFAULT 0 CHECK (timestamp_ms >= 0),
    is_final     BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX transcripts_session_idx ON transcripts (session_id, timestamp_ms, id);

CREATE TABLE usage_events (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id      BIGINT REFERENCES sessions (id) ON DELETE SET NULL,
    agent_config_id BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    service         TEXT NOT NULL CHECK (service IN ('llm', 'stt', 'tts')),
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    input_tokens    BIGINT NOT NULL DEFAULT 0,
    output_tokens   BIGINT NOT NULL DEFAULT 0,
    audio_seconds   NUMERIC(14, 3) NOT NULL DEFAULT 0,
    characters      BIGINT NOT NULL DEFAULT 0,
    -- Exact money: never floats.
    cost_usd        NUMERIC(18, 8) NOT NULL DEFAULT 0,
    priced          BOOLEAN NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_project_created_idx ON usage_events (project_id, created_at);
CREATE INDEX usage_events_session_idx ON usage_events (session_id);

-- API calls per project and UTC day, flushed from memory in batches.
CREATE TABLE api_usage_daily (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    day        DATE NOT NULL,
    calls      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, day)
);
