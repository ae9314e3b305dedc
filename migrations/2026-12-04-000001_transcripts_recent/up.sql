-- Transcript search ranks the newest matching lines of a project: for a term
-- in a large share of the lines the planner walks this index backwards and
-- stops after enough matches, instead of building a bitmap of millions of
-- entries from the GIN posting list (issue #24's 50 ms p99 at 10 M lines).
CREATE INDEX transcripts_project_recent_idx ON transcripts (project_id, id DESC) WHERE is_final;
