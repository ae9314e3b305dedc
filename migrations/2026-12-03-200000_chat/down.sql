DROP INDEX events_chat_idx;
CREATE OR REPLACE FUNCTION voxplane_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (project_id, endpoint_id, event_id)
    SELECT e.project_id, w.id, e.id
    FROM new_events e
    JOIN webhook_endpoints w ON w.project_id = e.project_id AND w.is_active
         AND (cardinality(w.event_types) = 0 OR e.event_type = ANY (w.event_types));
    RETURN NULL;
END $$;
DELETE FROM events WHERE event_type LIKE 'chat.%';
DROP TRIGGER project_members_leave_chats ON project_members;
DROP FUNCTION voxplane_chat_leave_project();
DROP TABLE chat_presence;
DROP TABLE chat_nodes;
DROP TABLE chat_messages;
DROP TABLE chat_call_participants;
DROP TABLE chat_calls;
DROP TABLE chat_members;
DROP TABLE chat_chats;
