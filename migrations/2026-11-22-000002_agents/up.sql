-- Agent configurations: what a dispatched LiveKit agent should be.
CREATE TABLE agents (
    id                 BIGSERIAL PRIMARY KEY,
    project_id         BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name               TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    agent_type         TEXT NOT NULL DEFAULT 'voice' CHECK (agent_type IN ('voice')),
    -- The agent name LiveKit dispatches to (`roomConfig.agents[].agentName`).
    dispatch_name      TEXT NOT NULL CHECK (dispatch_name ~ '^[A-Za-z0-9._-]{1,128}$'),
    llm_provider       TEXT,
    llm_model          TEXT,
    stt_provider       TEXT,
    stt_model          TEXT,
    tts_provider       TEXT,
    tts_model          TEXT,
    tts_voice          TEXT,
    instructions       TEXT,
    greeting           TEXT,
    -- OpenAI-style function definitions, validated by the API.
    tools              JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(tools) = 'array'),
    knowledge_base_ids BIGINT[] NOT NULL DEFAULT '{}',
    is_active          BOOLEAN NOT NULL DEFAULT true,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agents_project_name_key ON agents (project_id, lower(name));
CREATE INDEX agents_project_id_idx ON agents (project_id, id);
