-- A recording is reserved as `starting` (and counted by the quota) before
-- LiveKit is asked for its egress; the egress id replaces a placeholder
-- once LiveKit answers (issue 19: no remote call inside a transaction).
ALTER TABLE recordings DROP CONSTRAINT recordings_status_check;
ALTER TABLE recordings ADD CONSTRAINT recordings_status_check
    CHECK (status IN ('starting', 'recording', 'completed', 'error'));
