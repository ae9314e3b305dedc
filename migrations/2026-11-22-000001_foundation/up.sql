-- Foundation: tenants, their API keys, and idempotency records.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE projects (
    id                    BIGSERIAL PRIMARY KEY,
    name                  TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    slug                  TEXT NOT NULL,
    -- LiveKit sees rooms as `<room_prefix>_<name>`; no '_' inside the prefix.
    room_prefix           TEXT NOT NULL CHECK (room_prefix ~ '^[a-z0-9]{3,32}$'),
    plan                  TEXT NOT NULL DEFAULT 'free'
                          CHECK (plan IN ('free', 'professional', 'enterprise')),
    -- Overrides the plan's requests per minute when set.
    rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute > 0),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at            TIMESTAMPTZ
);
CREATE UNIQUE INDEX projects_slug_key ON projects (slug);
CREATE UNIQUE INDEX projects_room_prefix_key ON projects (room_prefix);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash     BYTEA NOT NULL CHECK (octet_length(key_hash) = 32),
    key_prefix   TEXT NOT NULL,
    key_last4    TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_project_id_idx ON api_keys (project_id);

CREATE TABLE idempotency_keys (
    project_id            BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key                   TEXT NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash          BYTEA NOT NULL,
    -- NULL while the first request is still being processed.
    status_code           INTEGER,
    response_body         BYTEA,
    response_content_type TEXT,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);
