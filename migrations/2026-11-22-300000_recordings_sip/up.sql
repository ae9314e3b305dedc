-- Recordings (LiveKit Egress, audio-only room composite to a file) and SIP
-- telephony (trunks and call configurations).
CREATE TABLE recordings (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Full (prefixed) LiveKit room name.
    room_name        TEXT NOT NULL,
    egress_id        TEXT NOT NULL UNIQUE,
    format           TEXT NOT NULL CHECK (format IN ('ogg', 'mp4', 'wav')),
    status           TEXT NOT NULL DEFAULT 'recording' CHECK (status IN ('recording', 'completed', 'error')),
    -- Built by the server (recordings_dir/project/room/key.ext), never from input.
    file_path        TEXT NOT NULL,
    size_bytes       BIGINT,
    duration_seconds DOUBLE PRECISION,
    error            TEXT,
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at         TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX recordings_project_created_idx ON recordings (project_id, created_at DESC, id DESC);
CREATE INDEX recordings_room_active_idx ON recordings (project_id, room_name) WHERE status = 'recording';

CREATE TABLE sip_trunks (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    -- E.164.
    phone_number      TEXT NOT NULL,
    -- SIP provider host for outbound calls.
    address           TEXT NOT NULL,
    auth_username     TEXT,
    inbound_trunk_id  TEXT,
    outbound_trunk_id TEXT,
    dispatch_rule_id  TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, phone_number)
);

CREATE TABLE sip_configs (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    phone_number      TEXT NOT NULL,
    agent_config_id   BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    dtmf_enabled      BOOLEAN NOT NULL DEFAULT true,
    -- Seconds; the call is ended when it passes.
    max_call_duration INTEGER NOT NULL DEFAULT 1800 CHECK (max_call_duration > 0),
    trunk_id          BIGINT REFERENCES sip_trunks (id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sip_configs_project_idx ON sip_configs (project_id, id);
