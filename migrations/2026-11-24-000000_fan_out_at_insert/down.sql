DROP TRIGGER projects_delete_rows ON projects;
DROP FUNCTION voxplane_delete_project_rows();
CREATE FUNCTION voxplane_delete_project_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM events WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER projects_delete_events BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION voxplane_delete_project_events();
CREATE FUNCTION voxplane_delete_project_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER projects_delete_sessions BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION voxplane_delete_project_sessions();
DELETE FROM transcripts t WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = t.session_id);
ALTER TABLE transcripts ADD CONSTRAINT transcripts_session_id_fkey
    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE;
DELETE FROM webhook_deliveries d WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = d.project_id);
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE;
DROP TRIGGER events_fan_out ON events;
DROP FUNCTION voxplane_fan_out_events();
ALTER TABLE events ADD COLUMN dispatched_at TIMESTAMPTZ;
UPDATE events SET dispatched_at = created_at;
CREATE INDEX events_undispatched_idx ON events (id) WHERE dispatched_at IS NULL;
