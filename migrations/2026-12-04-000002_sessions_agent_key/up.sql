-- A session's key to its agent was checked per inserted row, each check a
-- FOR KEY SHARE lock of the agent row: every call start of a project shares
-- that one row, so concurrent batches of starts made it a multixact and the
-- check cost more than the insert (issue #20). Starts now lock the agents
-- they dispatch once per batch (src/calls/dispatch.rs, `candidates`), and a
-- trigger does what ON DELETE SET NULL did. The index serves that trigger and
-- the sessions list's agent filter (the partial one covered active sessions only).
ALTER TABLE sessions DROP CONSTRAINT sessions_agent_config_id_fkey;
DROP INDEX sessions_agent_idx;
CREATE INDEX sessions_agent_idx ON sessions (agent_config_id) WHERE agent_config_id IS NOT NULL;
CREATE FUNCTION voxplane_agent_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET agent_config_id = NULL WHERE agent_config_id = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER agents_release_sessions AFTER DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION voxplane_agent_gone();
