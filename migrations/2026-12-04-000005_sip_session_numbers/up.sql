-- Outbound dials name their room `outbound-call-<n>`, n from the number of
-- the project's SIP sessions: a counter kept with the others (`sip_sessions`,
-- every SIP session ever, inbound and outbound), so a dial reads one row
-- instead of counting the project's SIP sessions (issue #20).
CREATE OR REPLACE FUNCTION voxplane_count_new_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
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
    INSERT INTO quota_counters (project_id, resource, period, used)
    SELECT project_id, 'sip_sessions', DATE '1970-01-01', count(*)
    FROM new_sessions WHERE session_type = 'sip' GROUP BY 1 ORDER BY 1
    ON CONFLICT (project_id, resource, period)
    DO UPDATE SET used = quota_counters.used + EXCLUDED.used;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION voxplane_count_gone_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
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
    UPDATE quota_counters c SET used = c.used - g.n
    FROM (SELECT project_id, count(*) AS n FROM old_sessions
          WHERE session_type = 'sip' GROUP BY 1) g
    WHERE c.project_id = g.project_id AND c.resource = 'sip_sessions'
      AND c.period = DATE '1970-01-01';
    RETURN NULL;
END $$;

-- A voice session that becomes a SIP one (an inbound call's webhook handled
-- after its agent's) counts from then on.
CREATE OR REPLACE FUNCTION voxplane_count_sip_calls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.session_type = 'sip' AND OLD.status = 'active' THEN
        PERFORM voxplane_quota_add(OLD.project_id, 'sip_calls', DATE '1970-01-01', -1);
    END IF;
    IF NEW.session_type = 'sip' AND NEW.status = 'active' THEN
        PERFORM voxplane_quota_add(NEW.project_id, 'sip_calls', DATE '1970-01-01', 1);
    END IF;
    IF OLD.session_type = 'sip' AND NEW.session_type <> 'sip' THEN
        PERFORM voxplane_quota_add(OLD.project_id, 'sip_sessions', DATE '1970-01-01', -1);
    ELSIF OLD.session_type <> 'sip' AND NEW.session_type = 'sip' THEN
        PERFORM voxplane_quota_add(NEW.project_id, 'sip_sessions', DATE '1970-01-01', 1);
    END IF;
    RETURN NULL;
END $$;

INSERT INTO quota_counters (project_id, resource, period, used)
SELECT project_id, 'sip_sessions', DATE '1970-01-01', count(*) FROM sessions
WHERE session_type = 'sip' GROUP BY 1;
