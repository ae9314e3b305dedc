-- Quota counters: what a project uses of each plan resource, kept by
-- triggers in the statement that inserts, deletes or ends a counted row, so
-- a quota check reads one row instead of counting a table while holding the
-- project row (issue #20). A check locks its counter row (src/limits/quota.rs),
-- so concurrent creates of one resource of one project take turns on that
-- row only, for the rest of their (short) transaction.
--
-- `period` is the first day of the UTC month for monthly resources (sessions,
-- recordings) and 1970-01-01 for standing ones: a new month starts from a
-- missing row, with no job at midnight.
CREATE TABLE quota_counters (
    project_id BIGINT NOT NULL,
    resource   TEXT   NOT NULL,
    period     DATE   NOT NULL,
    used       BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource, period)
);
-- No key to `projects` (as for sessions and events): a key check would hold
-- the project row FOR KEY SHARE in every creating transaction. Counters go
-- with their project in `voxplane_delete_project_rows`.

CREATE FUNCTION voxplane_month(at TIMESTAMPTZ) RETURNS DATE
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_trunc('month', at AT TIME ZONE 'UTC')::date $$;

-- Adds `delta` to a counter. A decrement never creates a row: the rows it
-- counts went with their project, or the counter is already wrong (the
-- recount repairs it).
CREATE FUNCTION voxplane_quota_add(p BIGINT, r TEXT, per DATE, delta BIGINT) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF delta > 0 THEN
        INSERT INTO quota_counters (project_id, resource, period, used)
        VALUES (p, r, per, delta)
        ON CONFLICT (project_id, resource, period)
        DO UPDATE SET used = quota_counters.used + EXCLUDED.used;
    ELSIF delta < 0 THEN
        UPDATE quota_counters SET used = used + delta
        WHERE project_id = p AND resource = r AND period = per;
    END IF;
END $$;

-- Standing resources counted by row (agents, knowledge bases, SIP configs,
-- webhook endpoints, members): TG_ARGV[0] names the resource.
CREATE FUNCTION voxplane_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM voxplane_quota_add(NEW.project_id, TG_ARGV[0], DATE '1970-01-01', 1);
    ELSE
        PERFORM voxplane_quota_add(OLD.project_id, TG_ARGV[0], DATE '1970-01-01', -1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER agents_quota AFTER INSERT OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_rows('agents');
CREATE TRIGGER knowledge_bases_quota AFTER INSERT OR DELETE ON knowledge_bases
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_rows('knowledge_bases');
CREATE TRIGGER sip_configs_quota AFTER INSERT OR DELETE ON sip_configs
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_rows('sip_configs');
CREATE TRIGGER webhook_endpoints_quota AFTER INSERT OR DELETE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_rows('webhook_configs');
CREATE TRIGGER project_members_quota AFTER INSERT OR DELETE ON project_members
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_rows('team_members');

-- Rows that count while in a state: rooms while active, invitations while
-- open (expired ones included: a quota check lapses them first), recordings
-- by the month they were created in.
CREATE FUNCTION voxplane_count_states() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was BOOLEAN := false;
    now_counts BOOLEAN := false;
    old_period DATE := DATE '1970-01-01';
    new_period DATE := DATE '1970-01-01';
BEGIN
    IF TG_TABLE_NAME = 'rooms' THEN
        IF TG_OP <> 'INSERT' THEN was := OLD.status = 'active'; END IF;
        IF TG_OP <> 'DELETE' THEN now_counts := NEW.status = 'active'; END IF;
    ELSIF TG_TABLE_NAME = 'invitations' THEN
        IF TG_OP <> 'INSERT' THEN was := OLD.accepted_at IS NULL AND OLD.revoked_at IS NULL; END IF;
        IF TG_OP <> 'DELETE' THEN now_counts := NEW.accepted_at IS NULL AND NEW.revoked_at IS NULL; END IF;
    ELSIF TG_TABLE_NAME = 'recordings' THEN
        IF TG_OP <> 'INSERT' THEN was := true; old_period := voxplane_month(OLD.created_at); END IF;
        IF TG_OP <> 'DELETE' THEN now_counts := true; new_period := voxplane_month(NEW.created_at); END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF was AND now_counts AND old_period = new_period AND OLD.project_id = NEW.project_id THEN
            RETURN NULL;
        END IF;
    END IF;
    IF was THEN PERFORM voxplane_quota_add(OLD.project_id, TG_ARGV[0], old_period, -1); END IF;
    IF now_counts THEN PERFORM voxplane_quota_add(NEW.project_id, TG_ARGV[0], new_period, 1); END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rooms_quota AFTER INSERT OR DELETE OR UPDATE OF status, project_id ON rooms
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_states('rooms');
CREATE TRIGGER invitations_quota
    AFTER INSERT OR DELETE OR UPDATE OF accepted_at, revoked_at, project_id ON invitations
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_states('team_members');
CREATE TRIGGER recordings_quota AFTER INSERT OR DELETE OR UPDATE OF created_at, project_id ON recordings
    FOR EACH ROW EXECUTE FUNCTION voxplane_count_states('recordings');

-- Sessions are the hot path (every call start): counted per statement, so a
-- batch of starts updates each counter once. `sessions` counts the month's
-- starts; `sip_calls` the SIP calls active now.
CREATE FUNCTION voxplane_count_new_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO quota_counters (project_id, resource, period, used)
    SELECT project_id, 'sessions', voxplane_month(started_at), count(*)
    FROM new_sessions GROUP BY 1, 3 ORDER BY 1, 3
    ON CONFLICT (project_id, resource, period)
    DO UPDATE SET used = quota_counters.used + EXCLUDED.used;
    INSERT INTO quota_counters (project_id, resource, period, used)
    SELECT project_id, 'sip_calls', DATE '1970-01-01', count(*)
    FROM new_sessions WHERE session_type = 'sip' AND status = 'active' GROUP BY 1 ORDER BY 1
    ON CONFLICT (project_id, resource, period)
    DO UPDATE SET used = quota_counters.used + EXCLUDED.used;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_quota_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION voxplane_count_new_sessions();

CREATE FUNCTION voxplane_count_gone_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE quota_counters c SET used = c.used - g.n
    FROM (SELECT project_id, voxplane_month(started_at) AS period, count(*) AS n
          FROM old_sessions GROUP BY 1, 2) g
    WHERE c.project_id = g.project_id AND c.resource = 'sessions' AND c.period = g.period;
    UPDATE quota_counters c SET used = c.used - g.n
    FROM (SELECT project_id, count(*) AS n FROM old_sessions
          WHERE session_type = 'sip' AND status = 'active' GROUP BY 1) g
    WHERE c.project_id = g.project_id AND c.resource = 'sip_calls'
      AND c.period = DATE '1970-01-01';
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_quota_delete AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS old_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION voxplane_count_gone_sessions();

-- A SIP call that ends (or a session that becomes one) moves `sip_calls`;
-- the WHEN clause keeps every other session update free of the trigger.
CREATE FUNCTION voxplane_count_sip_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.session_type = 'sip' AND OLD.status = 'active' THEN
        PERFORM voxplane_quota_add(OLD.project_id, 'sip_calls', DATE '1970-01-01', -1);
    END IF;
    IF NEW.session_type = 'sip' AND NEW.status = 'active' THEN
        PERFORM voxplane_quota_add(NEW.project_id, 'sip_calls', DATE '1970-01-01', 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_quota_sip AFTER UPDATE OF status, session_type ON sessions
    FOR EACH ROW
    WHEN ((OLD.session_type = 'sip' OR NEW.session_type = 'sip')
          AND (OLD.status IS DISTINCT FROM NEW.status
               OR OLD.session_type IS DISTINCT FROM NEW.session_type))
    EXECUTE FUNCTION voxplane_count_sip_calls();

-- Counters go with their project.
CREATE OR REPLACE FUNCTION voxplane_delete_project_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM transcripts WHERE session_id IN (SELECT id FROM sessions WHERE project_id = OLD.id);
    DELETE FROM sessions WHERE project_id = OLD.id;
    DELETE FROM events WHERE project_id = OLD.id;
    DELETE FROM quota_counters WHERE project_id = OLD.id;
    RETURN OLD;
END $$;

-- What exists now, counted once (the recount does the same per project).
INSERT INTO quota_counters (project_id, resource, period, used)
SELECT project_id, 'agents', DATE '1970-01-01', count(*) FROM agents GROUP BY 1
UNION ALL
SELECT project_id, 'knowledge_bases', DATE '1970-01-01', count(*) FROM knowledge_bases GROUP BY 1
UNION ALL
SELECT project_id, 'sip_configs', DATE '1970-01-01', count(*) FROM sip_configs GROUP BY 1
UNION ALL
SELECT project_id, 'webhook_configs', DATE '1970-01-01', count(*) FROM webhook_endpoints GROUP BY 1
UNION ALL
SELECT project_id, 'team_members', DATE '1970-01-01', sum(n)::bigint FROM (
    SELECT project_id, count(*) AS n FROM project_members GROUP BY 1
    UNION ALL
    SELECT project_id, count(*) FROM invitations
    WHERE accepted_at IS NULL AND revoked_at IS NULL GROUP BY 1) t GROUP BY 1
UNION ALL
SELECT project_id, 'rooms', DATE '1970-01-01', count(*) FROM rooms WHERE status = 'active' GROUP BY 1
UNION ALL
SELECT project_id, 'recordings', voxplane_month(created_at), count(*) FROM recordings GROUP BY 1, 3
UNION ALL
SELECT project_id, 'sessions', voxplane_month(started_at), count(*) FROM sessions GROUP BY 1, 3
UNION ALL
SELECT project_id, 'sip_calls', DATE '1970-01-01', count(*) FROM sessions
WHERE session_type = 'sip' AND status = 'active' GROUP BY 1;
