-- Team chat: chats of a project's members (1:1 and group), their members
-- with a read pointer and an archive flag, messages ordered per chat, voice
-- calls in a chat and who was in them, and the presence of accounts per node.

CREATE TABLE chat_chats (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    -- Groups only.
    name            TEXT CHECK (name IS NULL OR char_length(name) BETWEEN 1 AND 200),
    -- Direct chats: "<lower account id>:<higher account id>", one chat per pair.
    direct_key      TEXT,
    created_by      BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    -- Messages posted so far; a message's `seq` is this value after its insert.
    -- Updated (and so row-locked) by every message: the messages of a chat
    -- are numbered, and commit, in one order.
    last_seq        BIGINT NOT NULL DEFAULT 0,
    last_message_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CHECK ((kind = 'group') = (name IS NOT NULL))
);
CREATE UNIQUE INDEX chat_chats_direct_key ON chat_chats (project_id, direct_key)
    WHERE direct_key IS NOT NULL;

CREATE TABLE chat_members (
    chat_id     BIGINT NOT NULL REFERENCES chat_chats (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Group admins add and remove members and rename the group.
    role        TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    archived    BOOLEAN NOT NULL DEFAULT false,
    -- The member has read every message with seq <= read_seq
    -- (unread = chat_chats.last_seq - read_seq).
    read_seq    BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, account_id)
);
CREATE INDEX chat_members_account_idx ON chat_members (account_id, chat_id);

CREATE TABLE chat_calls (
    id           BIGSERIAL PRIMARY KEY,
    chat_id      BIGINT NOT NULL REFERENCES chat_chats (id) ON DELETE CASCADE,
    project_id   BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- The full LiveKit room name (<project prefix>_chatcall-<id>).
    room_name    TEXT NOT NULL,
    started_by   BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    -- pending: reserved, the room not created yet; ringing: the room exists,
    -- nobody but the caller joined; active: someone else joined.
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'ringing', 'active', 'ended', 'failed')),
    end_reason   TEXT,
    -- Grows with every change reported (status, someone joining or leaving),
    -- so a follower can tell an older report from a newer one.
    version      BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    answered_at  TIMESTAMPTZ,
    ended_at     TIMESTAMPTZ
);
-- One call at a time per chat.
CREATE UNIQUE INDEX chat_calls_live_key ON chat_calls (chat_id)
    WHERE status IN ('pending', 'ringing', 'active');
CREATE UNIQUE INDEX chat_calls_room_key ON chat_calls (room_name);
CREATE INDEX chat_calls_live_idx ON chat_calls (created_at)
    WHERE status IN ('pending', 'ringing');

CREATE TABLE chat_call_participants (
    call_id     BIGINT NOT NULL REFERENCES chat_calls (id) ON DELETE CASCADE,
    -- The LiveKit identity (`account-<id>` for the tokens Voxplane mints).
    identity    TEXT NOT NULL,
    account_id  BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    joined_at   TIMESTAMPTZ NOT NULL,
    left_at     TIMESTAMPTZ,
    PRIMARY KEY (call_id, identity)
);

CREATE TABLE chat_messages (
    id                BIGSERIAL PRIMARY KEY,
    chat_id           BIGINT NOT NULL REFERENCES chat_chats (id) ON DELETE CASCADE,
    -- Position in the chat (1, 2, …), taken under the chat row's lock, as
    -- is the id: both grow with the chat's commit order.
    seq               BIGINT NOT NULL,
    sender_account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('text', 'call', 'session_ref')),
    content           TEXT NOT NULL,
    -- The sender's id for de-duplication (a resend returns the stored message).
    client_id         TEXT CHECK (client_id IS NULL OR char_length(client_id) BETWEEN 1 AND 64),
    -- kind session_ref: a session of the chat's project.
    session_id        BIGINT,
    -- kind call: the call.
    call_id           BIGINT REFERENCES chat_calls (id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    search            tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED
);
CREATE UNIQUE INDEX chat_messages_chat_idx ON chat_messages (chat_id, id);
CREATE UNIQUE INDEX chat_messages_client_key ON chat_messages (chat_id, sender_account_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX chat_messages_search_idx ON chat_messages USING gin (search);

-- Presence: an account with a chat socket on a node has a row for that node;
-- nodes prove they are alive with a heartbeat. Rows of a node whose heartbeat
-- stopped are removed (and the accounts reported offline) by any other node.
CREATE TABLE chat_nodes (
    node_id      TEXT PRIMARY KEY,
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE chat_presence (
    node_id     TEXT NOT NULL REFERENCES chat_nodes (node_id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    since       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, node_id)
);
CREATE INDEX chat_presence_node_idx ON chat_presence (node_id);

-- A member who leaves a project leaves its chats.
CREATE FUNCTION voxplane_chat_leave_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM chat_members m USING chat_chats c
    WHERE m.chat_id = c.id AND c.project_id = OLD.project_id AND m.account_id = OLD.account_id;
    RETURN OLD;
END $$;
CREATE TRIGGER project_members_leave_chats AFTER DELETE ON project_members
    FOR EACH ROW EXECUTE FUNCTION voxplane_chat_leave_project();

-- Chat events (chat.*) travel the event spine to the chat sockets of every
-- node, but are no webhook event types: no deliveries for them. They are
-- kept briefly (see chat::presence's purge); this index finds the old ones.
CREATE OR REPLACE FUNCTION voxplane_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (project_id, endpoint_id, event_id)
    SELECT e.project_id, w.id, e.id
    FROM new_events e
    JOIN webhook_endpoints w ON w.project_id = e.project_id AND w.is_active
         AND (cardinality(w.event_types) = 0 OR e.event_type = ANY (w.event_types))
    WHERE e.event_type NOT LIKE 'chat.%';
    RETURN NULL;
END $$;
CREATE INDEX events_chat_idx ON events (created_at) WHERE event_type LIKE 'chat.%';
