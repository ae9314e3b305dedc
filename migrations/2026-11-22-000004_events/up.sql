-- The event spine: a transactional outbox, webhook endpoints, deliveries and attempts.
CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    -- Stable public id, sent as `webhook-id`.
    public_id     TEXT NOT NULL,
    project_id    BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_type    TEXT NOT NULL,
    data          JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- When deliveries were created for it (NULL: not yet fanned out).
    dispatched_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX events_public_id_key ON events (public_id);
CREATE INDEX events_undispatched_idx ON events (id) WHERE dispatched_at IS NULL;
CREATE INDEX events_project_idx ON events (project_id, id);

-- Wake dispatchers (on every node) when an event commits.
CREATE FUNCTION voxplane_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('voxplane_events', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION voxplane_notify_event();

CREATE TABLE webhook_endpoints (
    id                         BIGSERIAL PRIMARY KEY,
    project_id                 BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url                        TEXT NOT NULL,
    description                TEXT NOT NULL DEFAULT '',
    -- Empty: every event type.
    event_types                TEXT[] NOT NULL DEFAULT '{}',
    is_active                  BOOLEAN NOT NULL DEFAULT true,
    -- `whsec_<base64>`; signing needs it, so it is kept (shown once).
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    disabled_reason            TEXT,
    failing_since              TIMESTAMPTZ,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_project_idx ON webhook_endpoints (project_id, id);

CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    endpoint_id      BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- pending | delivered | failed
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A worker's claim; another may take the delivery after it passes.
    locked_until     TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX webhook_deliveries_endpoint_event_key ON webhook_deliveries (endpoint_id, event_id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);

CREATE TABLE webhook_attempts (
    id            BIGSERIAL PRIMARY KEY,
    delivery_id   BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    response_body TEXT,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
