-- Writes on the hot path (transcript lines and their events) must not
-- serialise on anything shared by a whole project or the whole database.

-- 1. The per-row NOTIFY trigger made Postgres serialise the commit of every
--    event-writing transaction (the notify queue lock is held through the
--    WAL flush). Voxplane sends one NOTIFY after the commit instead, outside
--    the writer's transaction (see src/events/mod.rs).
DROP TRIGGER events_notify ON events;
DROP FUNCTION voxplane_notify_event();

-- 2. A foreign key to `projects` makes every insert lock the project's row
--    (FOR KEY SHARE): concurrent writers of one project pile up on one tuple
--    as multixacts. A transcript line already belongs to a project through
--    its session (whose key cascades); events get the cascade from a trigger.
ALTER TABLE transcripts DROP CONSTRAINT transcripts_project_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_project_id_fkey;
CREATE FUNCTION voxplane_delete_project_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM events WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER projects_delete_events BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION voxplane_delete_project_events();
