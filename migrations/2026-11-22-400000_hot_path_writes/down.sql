DROP TRIGGER projects_delete_events ON projects;
DROP FUNCTION voxplane_delete_project_events();
ALTER TABLE events ADD CONSTRAINT events_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE;
ALTER TABLE transcripts ADD CONSTRAINT transcripts_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE;

CREATE FUNCTION voxplane_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('voxplane_events', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION voxplane_notify_event();
