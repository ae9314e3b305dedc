DROP INDEX sip_calls_reserved_idx;
DELETE FROM sessions WHERE id IN (SELECT session_id FROM sip_calls WHERE status = 'reserved');
DELETE FROM sip_calls WHERE status = 'reserved';
ALTER TABLE sip_calls DROP CONSTRAINT sip_calls_status_check;
ALTER TABLE sip_calls ADD CONSTRAINT sip_calls_status_check
    CHECK (status IN ('dialing', 'ringing', 'active', 'ended', 'failed'));
