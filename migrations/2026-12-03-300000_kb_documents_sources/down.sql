DELETE FROM kb_index_jobs WHERE kind IN ('pdf', 'docx', 'html');
ALTER TABLE kb_index_jobs DROP CONSTRAINT kb_index_jobs_kind_check;
ALTER TABLE kb_index_jobs ADD CONSTRAINT kb_index_jobs_kind_check
    CHECK (kind IN ('txt', 'md', 'csv', 'json'));
CREATE INDEX kb_chunks_tsv_idx ON kb_chunks USING gin (tsv);
DROP INDEX kb_chunks_text_idx;
DROP TRIGGER kb_chunks_heading_tsv ON kb_chunks;
DROP FUNCTION kb_chunks_heading_tsv();
ALTER TABLE kb_chunks DROP COLUMN heading_tsv, DROP COLUMN url, DROP COLUMN heading_path,
    DROP COLUMN page;
DROP TABLE kb_documents;
DROP TABLE kb_source_pages;
DROP TABLE kb_sources;
