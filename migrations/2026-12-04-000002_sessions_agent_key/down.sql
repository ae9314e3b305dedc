DROP TRIGGER agents_release_sessions ON agents;
DROP FUNCTION voxplane_agent_gone();
UPDATE sessions s SET agent_config_id = NULL
WHERE agent_config_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = s.agent_config_id);
DROP INDEX sessions_agent_idx;
CREATE INDEX sessions_agent_idx ON sessions (agent_config_id) WHERE status = 'active';
ALTER TABLE sessions ADD CONSTRAINT sessions_agent_config_id_fkey
    FOREIGN KEY (agent_config_id) REFERENCES agents (id) ON DELETE SET NULL;
