-- One durable table of background jobs (issue 19), in the style of
-- crates.io's background jobs: a job is inserted with the change that
-- needs it (in the same transaction), claimed by any process with
-- FOR UPDATE SKIP LOCKED and a lease (`locked_until`, `locked_by`), run
-- with no transaction open, then deleted, or rescheduled with backoff
-- (`attempts`, `last_error`), or kept as failed (`failed_at`).
CREATE TABLE background_jobs (
    id           BIGSERIAL PRIMARY KEY,
    job_type     TEXT NOT NULL,
    data         JSONB NOT NULL DEFAULT '{}',
    priority     SMALLINT NOT NULL DEFAULT 0,
    run_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    locked_until TIMESTAMPTZ,
    locked_by    TEXT,
    failed_at    TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The claim's order among the jobs still to run.
CREATE INDEX background_jobs_due_idx ON background_jobs (priority DESC, run_at, id)
    WHERE failed_at IS NULL;

-- Reservations made before this table existed get their settle jobs
-- (settled by the LiveKit reconciler before); after any create still in
-- flight can have answered.
INSERT INTO background_jobs (job_type, data, run_at)
SELECT 'settle_room', jsonb_build_object('room_id', id), now() + interval '2 minutes'
  FROM rooms WHERE sid IS NULL AND status = 'active';
INSERT INTO background_jobs (job_type, data, run_at)
SELECT 'settle_recording', jsonb_build_object('recording_id', id), now() + interval '2 minutes'
  FROM recordings WHERE status = 'starting';
INSERT INTO background_jobs (job_type, data, run_at)
SELECT 'settle_trunk', jsonb_build_object('trunk_id', id), now() + interval '2 minutes'
  FROM sip_trunks
 WHERE outbound_trunk_id IS NULL AND inbound_trunk_id IS NULL AND dispatch_rule_id IS NULL;
INSERT INTO background_jobs (job_type, data, run_at)
SELECT 'settle_dial', jsonb_build_object('call_id', id), now() + interval '2 minutes'
  FROM sip_calls WHERE status = 'reserved';
