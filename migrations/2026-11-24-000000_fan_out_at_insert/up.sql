-- Webhook deliveries are created with their event, in the transaction that
-- writes it: a statement-level trigger joins the new events to the project's
-- active endpoints. Before, a dispatcher claimed undispatched events and
-- marked each one (`dispatched_at`): an extra non-HOT update of every event
-- (a new version in all its indexes) and a partial index full of dead
-- entries to scan past, for events that most often go to no endpoint.

-- Events not fanned out yet get their deliveries now.
INSERT INTO webhook_deliveries (project_id, endpoint_id, event_id)
SELECT e.project_id, w.id, e.id
FROM events e
JOIN webhook_endpoints w ON w.project_id = e.project_id AND w.is_active
     AND (cardinality(w.event_types) = 0 OR e.event_type = ANY (w.event_types))
WHERE e.dispatched_at IS NULL
ON CONFLICT DO NOTHING;

ALTER TABLE events DROP COLUMN dispatched_at;

CREATE FUNCTION voxplane_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (project_id, endpoint_id, event_id)
    SELECT e.project_id, w.id, e.id
    FROM new_events e
    JOIN webhook_endpoints w ON w.project_id = e.project_id AND w.is_active
         AND (cardinality(w.event_types) = 0 OR e.event_type = ANY (w.event_types));
    RETURN NULL;
END $$;
CREATE TRIGGER events_fan_out AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION voxplane_fan_out_events();

-- Deliveries now are written in the business transaction; their key to
-- `projects` would hold the project row FOR KEY SHARE until it commits (a
-- dial for seconds), against every quota check. They belong to the project
-- through their endpoint, whose key cascades.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_project_id_fkey;

-- The key of a transcript line to its session is checked per row (a
-- FOR KEY SHARE lock of the session row): concurrent batches of one room's
-- lines share that row as multixacts. A line is only ever inserted by the
-- statement that finds its active session (src/db/transcripts.rs), and
-- sessions go only with their project.
ALTER TABLE transcripts DROP CONSTRAINT transcripts_session_id_fkey;

-- What belongs to a project by `project_id` alone (events, sessions, and now
-- transcript lines) goes with it, in one trigger instead of one per table.
-- Lines are found through their sessions (transcripts_session_idx), not by
-- their unindexed project_id.
DROP TRIGGER projects_delete_events ON projects;
DROP FUNCTION voxplane_delete_project_events();
DROP TRIGGER projects_delete_sessions ON projects;
DROP FUNCTION voxplane_delete_project_sessions();
CREATE FUNCTION voxplane_delete_project_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM transcripts WHERE session_id IN (SELECT id FROM sessions WHERE project_id = OLD.id);
    DELETE FROM sessions WHERE project_id = OLD.id;
    DELETE FROM events WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER projects_delete_rows BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION voxplane_delete_project_rows();
