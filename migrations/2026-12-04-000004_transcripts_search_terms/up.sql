-- Transcript search: the GIN index on the terms alone. With the project as
-- its first column, a search intersected the term's posting list with the
-- project's, which holds every line of the project: for a large project
-- that walk cost more than the rest of the query. The project is tested on
-- the lines the terms find (the heap rows are read anyway), and a term in a
-- large share of the lines is found by walking `transcripts_project_recent_idx`.
DROP INDEX transcripts_search_idx;
CREATE INDEX transcripts_search_idx ON transcripts USING gin (search);
