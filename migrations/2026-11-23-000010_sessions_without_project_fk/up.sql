-- A session is inserted early in transactions that then wait on LiveKit
-- (a dial holds its session, uncommitted, while LiveKit places the call).
-- Its foreign key to `projects` would hold the project's row FOR KEY SHARE
-- all that time, and every quota check of the project (which locks that row
-- FOR UPDATE) would wait for the call. As for transcripts and events (see
-- 2026-11-22-400000_hot_path_writes), a session belongs to its project by
-- `project_id`, and a trigger deletes a project's sessions with it.
ALTER TABLE sessions DROP CONSTRAINT sessions_project_id_fkey;
CREATE FUNCTION voxplane_delete_project_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER projects_delete_sessions BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION voxplane_delete_project_sessions();
