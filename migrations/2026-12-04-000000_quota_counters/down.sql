CREATE OR REPLACE FUNCTION voxplane_delete_project_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM transcripts WHERE session_id IN (SELECT id FROM sessions WHERE project_id = OLD.id);
    DELETE FROM sessions WHERE project_id = OLD.id;
    DELETE FROM events WHERE project_id = OLD.id;
    RETURN OLD;
END $$;
DROP TRIGGER sessions_quota_sip ON sessions;
DROP TRIGGER sessions_quota_delete ON sessions;
DROP TRIGGER sessions_quota_insert ON sessions;
DROP TRIGGER recordings_quota ON recordings;
DROP TRIGGER invitations_quota ON invitations;
DROP TRIGGER rooms_quota ON rooms;
DROP TRIGGER project_members_quota ON project_members;
DROP TRIGGER webhook_endpoints_quota ON webhook_endpoints;
DROP TRIGGER sip_configs_quota ON sip_configs;
DROP TRIGGER knowledge_bases_quota ON knowledge_bases;
DROP TRIGGER agents_quota ON agents;
DROP FUNCTION voxplane_count_sip_calls();
DROP FUNCTION voxplane_count_gone_sessions();
DROP FUNCTION voxplane_count_new_sessions();
DROP FUNCTION voxplane_count_states();
DROP FUNCTION voxplane_count_rows();
DROP FUNCTION voxplane_quota_add(BIGINT, TEXT, DATE, BIGINT);
DROP FUNCTION voxplane_month(TIMESTAMPTZ);
DROP TABLE quota_counters;
