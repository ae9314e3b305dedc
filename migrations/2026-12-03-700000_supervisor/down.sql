DROP INDEX events_interim_idx;
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
DROP INDEX transcripts_search_idx;
ALTER TABLE transcripts DROP COLUMN search;
DROP EXTENSION IF EXISTS btree_gin;
DROP TABLE supervisions;
DROP TABLE project_dispositions;
DROP INDEX sessions_tags_idx;
DROP INDEX sessions_disposition_idx;
ALTER TABLE sessions DROP COLUMN rating;
ALTER TABLE sessions DROP COLUMN notes;
ALTER TABLE sessions DROP COLUMN tags;
ALTER TABLE sessions DROP COLUMN disposition;
