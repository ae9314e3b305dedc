DROP INDEX transcripts_search_idx;
CREATE INDEX transcripts_search_idx ON transcripts USING gin (project_id, search);
