-- Knowledge-base documents and web sources.
--
-- `kb_documents`: one row per document of a knowledge base (an upload, an
-- ingest, a crawled page), with its status: `indexing`, `ready`,
-- `no_text_layer` (a PDF whose pages carry no text, e.g. a scan: kept so
-- the client sees why nothing is searchable) or `error`. Its chunks are the
-- `kb_chunks` rows with the same (knowledge_base_id, source = name), as
-- before: existing rows keep their key and get a document row below, with
-- no rewrite of `kb_chunks` (an UPDATE of every chunk would re-insert each
-- one into the HNSW graph).
--
-- `kb_sources`: a URL crawled into a knowledge base (one page, or a
-- same-site crawl), refreshed every `refresh_hours`; a worker claims a due
-- source by setting `lease_until` (FOR UPDATE SKIP LOCKED), fetches with no
-- transaction open, records each page in a short transaction, and extends
-- the lease as it goes; a lease that runs out (a dead process) makes the
-- source claimable again. `kb_source_pages`: each page's fetch state
-- (validators for conditional requests, content hash) and outcome.
CREATE TABLE kb_sources (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    knowledge_base_id BIGINT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    url               TEXT NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('page', 'crawl')),
    max_depth         INTEGER NOT NULL CHECK (max_depth BETWEEN 0 AND 5),
    max_pages         INTEGER NOT NULL CHECK (max_pages BETWEEN 1 AND 500),
    use_sitemap       BOOLEAN NOT NULL DEFAULT false,
    -- NULL: fetched once, never refreshed.
    refresh_hours     INTEGER CHECK (refresh_hours BETWEEN 1 AND 8760),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'crawling', 'ready', 'error')),
    last_error        TEXT,
    last_crawled_at   TIMESTAMPTZ,
    -- When the worker should crawl it next (NULL: not scheduled).
    next_crawl_at     TIMESTAMPTZ DEFAULT now(),
    lease_until       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kb_sources_url_key ON kb_sources (knowledge_base_id, url);
CREATE INDEX kb_sources_due_idx ON kb_sources (next_crawl_at) WHERE next_crawl_at IS NOT NULL;

CREATE TABLE kb_source_pages (
    id             BIGSERIAL PRIMARY KEY,
    source_id      BIGINT NOT NULL REFERENCES kb_sources (id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    depth          INTEGER NOT NULL CHECK (depth >= 0),
    status         TEXT NOT NULL
                   CHECK (status IN ('indexed', 'unchanged', 'skipped', 'blocked', 'error', 'gone')),
    http_status    INTEGER,
    last_error     TEXT,
    etag           TEXT,
    last_modified  TEXT,
    content_sha256 TEXT,
    title          TEXT,
    chunk_count    INTEGER NOT NULL DEFAULT 0,
    fetched_at     TIMESTAMPTZ,
    indexed_at     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kb_source_pages_url_key ON kb_source_pages (source_id, url);

CREATE TABLE kb_documents (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    knowledge_base_id BIGINT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    -- The chunks' `source`: the file name, the ingest's `source_name`, or the page URL.
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('txt', 'md', 'csv', 'json', 'pdf', 'docx', 'html')),
    origin            TEXT NOT NULL CHECK (origin IN ('document', 'ingest', 'web')),
    source_id         BIGINT REFERENCES kb_sources (id) ON DELETE CASCADE,
    url               TEXT,
    title             TEXT,
    status            TEXT NOT NULL CHECK (status IN ('indexing', 'ready', 'no_text_layer', 'error')),
    error             TEXT,
    page_count        INTEGER,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kb_documents_name_key ON kb_documents (knowledge_base_id, name);
CREATE INDEX kb_documents_source_idx ON kb_documents (source_id) WHERE source_id IS NOT NULL;

INSERT INTO kb_documents (project_id, knowledge_base_id, name, kind, origin, status)
SELECT project_id, knowledge_base_id, source,
       CASE lower(substring(source FROM '\.([A-Za-z]+)$'))
           WHEN 'md' THEN 'md' WHEN 'markdown' THEN 'md' WHEN 'csv' THEN 'csv' WHEN 'json' THEN 'json'
           ELSE 'txt' END,
       'document', 'ready'
FROM kb_chunks GROUP BY project_id, knowledge_base_id, source;

-- Citations: the page of a PDF chunk, the headings above a chunk, the URL
-- of a crawled page. Constant defaults: no table rewrite.
ALTER TABLE kb_chunks
    ADD COLUMN page INTEGER,
    ADD COLUMN heading_path TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN url TEXT,
    -- The headings' words, searched with the content: a section names its
    -- product or policy in its headings, not in each paragraph. Set by the
    -- trigger below (a generated column would rewrite the table and rebuild
    -- its HNSW index).
    ADD COLUMN heading_tsv tsvector NOT NULL DEFAULT ''::tsvector;

CREATE FUNCTION kb_chunks_heading_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.heading_tsv := to_tsvector('english', array_to_string(NEW.heading_path, ' '));
    RETURN NEW;
END $$;
CREATE TRIGGER kb_chunks_heading_tsv BEFORE INSERT OR UPDATE OF heading_path ON kb_chunks
    FOR EACH ROW EXECUTE FUNCTION kb_chunks_heading_tsv();

-- Full-text search matches headings and content together (headings first,
-- so that proximity ranking sees them next to the text they introduce).
CREATE INDEX kb_chunks_text_idx ON kb_chunks USING gin ((heading_tsv || tsv));
DROP INDEX kb_chunks_tsv_idx;

-- Queued PDF, DOCX and HTML documents carry their chunks (JSON), cut at upload.
ALTER TABLE kb_index_jobs DROP CONSTRAINT kb_index_jobs_kind_check;
ALTER TABLE kb_index_jobs ADD CONSTRAINT kb_index_jobs_kind_check
    CHECK (kind IN ('txt', 'md', 'csv', 'json', 'pdf', 'docx', 'html'));
