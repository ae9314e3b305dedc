DELETE FROM kb_index_jobs WHERE kind IN ('pdf', 'docx', 'html');
ALTER TABLE kb_index_jobs DROP CONSTRAINT kb_index_jobs_kind_check;
ALTER TABLE kb_index_jobs ADD CONSTRAINT kb_index_jobs_kind_check
    CHECK (kind IN ('txt', 'md', 'csv', 'json'));
ALTER TABLE kb_chunks DROP COLUMN url, DROP COLUMN heading_path, DROP COLUMN page;
DROP TABLE kb_documents;
DROP TABLE kb_source_pages;
DROP TABLE kb_sources;
