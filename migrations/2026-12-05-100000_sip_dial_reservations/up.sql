-- A dial is reserved as a `reserved` call (with its session, which the
-- quota counts and whose partial unique index holds the room name) before
-- LiveKit is asked to place it; it turns `dialing` once LiveKit answers
-- (issue 19: no remote call inside a transaction). The reconciler settles
-- reservations left by a process that died.
ALTER TABLE sip_calls DROP CONSTRAINT sip_calls_status_check;
ALTER TABLE sip_calls ADD CONSTRAINT sip_calls_status_check
    CHECK (status IN ('reserved', 'dialing', 'ringing', 'active', 'ended', 'failed'));
CREATE INDEX sip_calls_reserved_idx ON sip_calls (created_at) WHERE status = 'reserved';
