-- SIP calls in progress and ended: their status as LiveKit reports it
-- (the SIP participant's `sip.callStatus`) and the deadline that ends them
-- (max_call_duration), kept here so that any process enforces it, also
-- after a restart.
CREATE TABLE sip_calls (
    id                   BIGSERIAL PRIMARY KEY,
    project_id           BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id           BIGINT REFERENCES sessions (id) ON DELETE SET NULL,
    -- Full (prefixed) LiveKit room name and the SIP participant in it.
    room_name            TEXT NOT NULL,
    participant_identity TEXT NOT NULL,
    phone_number         TEXT NOT NULL,
    direction            TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    status               TEXT NOT NULL DEFAULT 'dialing'
                         CHECK (status IN ('dialing', 'ringing', 'active', 'ended', 'failed')),
    -- Why it ended or failed (busy, no_answer, max_call_duration, …).
    reason               TEXT,
    max_call_duration    INTEGER NOT NULL CHECK (max_call_duration > 0),
    deadline             TIMESTAMPTZ NOT NULL,
    answered_at          TIMESTAMPTZ,
    ended_at             TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One live call per participant of a room.
CREATE UNIQUE INDEX sip_calls_live_idx ON sip_calls (project_id, room_name, participant_identity)
    WHERE status IN ('dialing', 'ringing', 'active');
-- What the calls worker scans: live calls by deadline.
CREATE INDEX sip_calls_deadline_idx ON sip_calls (deadline)
    WHERE status IN ('dialing', 'ringing', 'active');
