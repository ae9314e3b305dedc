-- Rooms and participants as LiveKit reported them, kept after they close.
CREATE TABLE rooms (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    full_name        TEXT NOT NULL,
    -- LiveKit's id of this incarnation of the room (RM_…).
    sid              TEXT,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    empty_timeout    INTEGER NOT NULL DEFAULT 300,
    max_participants INTEGER NOT NULL DEFAULT 0,
    metadata         TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at        TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One active room per (project, name).
CREATE UNIQUE INDEX rooms_one_active_name ON rooms (project_id, name) WHERE status = 'active';
CREATE UNIQUE INDEX rooms_sid_key ON rooms (sid);
CREATE INDEX rooms_project_name_idx ON rooms (project_id, name, id DESC);

CREATE TABLE participants (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- LiveKit's id of this session of the participant (PA_…).
    sid         TEXT NOT NULL,
    identity    TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    -- standard | ingress | egress | sip | agent | connector | bridge
    kind        TEXT NOT NULL DEFAULT 'standard',
    metadata    TEXT NOT NULL DEFAULT '',
    attributes  JSONB NOT NULL DEFAULT '{}'::jsonb,
    joined_at   TIMESTAMPTZ,
    left_at     TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX participants_sid_key ON participants (sid);
CREATE INDEX participants_room_idx ON participants (room_id);

-- LiveKit webhook ids already processed (LiveKit retries).
CREATE TABLE livekit_webhook_events (
    event_id    TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    room_name   TEXT NOT NULL DEFAULT '',
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX livekit_webhook_events_received_idx ON livekit_webhook_events (received_at);

-- Secrets integrators sign connection-details tokens with (HS256). Kept in
-- clear because verification needs them; shown once at creation.
CREATE TABLE connection_secrets (
    id         BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX connection_secrets_key_id_key ON connection_secrets (key_id);
CREATE UNIQUE INDEX connection_secrets_one_live ON connection_secrets (project_id) WHERE revoked_at IS NULL;
