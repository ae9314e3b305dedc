-- Knowledge bases for RAG: chunks with a 384-d embedding (HNSW, cosine) and a
-- generated full-text vector (GIN); large documents are indexed in the
-- background from a durable job queue.
CREATE TABLE knowledge_bases (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description     TEXT,
    chunk_size      INTEGER NOT NULL CHECK (chunk_size BETWEEN 100 AND 4000),
    chunk_overlap   INTEGER NOT NULL CHECK (chunk_overlap >= 0 AND chunk_overlap * 2 < chunk_size),
    indexing_status TEXT NOT NULL DEFAULT 'pending'
                    CHECK (indexing_status IN ('pending', 'indexing', 'ready', 'error')),
    indexing_error  TEXT,
    last_indexed_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_bases_project_id_idx ON knowledge_bases (project_id, id);

CREATE TABLE kb_chunks (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    knowledge_base_id BIGINT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    -- The document (file name or `source_name`) the chunk came from.
    source            TEXT NOT NULL,
    chunk_index       INTEGER NOT NULL CHECK (chunk_index >= 0),
    content           TEXT NOT NULL,
    -- all-MiniLM-L6-v2, mean pooled, L2-normalised.
    embedding         vector(384) NOT NULL,
    tsv               tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    is_active         BOOLEAN NOT NULL DEFAULT true,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kb_chunks_source_index_key ON kb_chunks (knowledge_base_id, source, chunk_index);
CREATE INDEX kb_chunks_kb_idx ON kb_chunks (knowledge_base_id, id);
CREATE INDEX kb_chunks_embedding_idx ON kb_chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX kb_chunks_tsv_idx ON kb_chunks USING gin (tsv);

-- Documents waiting to be chunked and embedded in the background. A worker
-- holds the row locked (FOR UPDATE SKIP LOCKED) in the transaction that stores
-- its chunks and deletes it there: a crash releases the lock and rolls back,
-- so a restart (or another node) resumes whatever was not finished.
CREATE TABLE kb_index_jobs (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    knowledge_base_id BIGINT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    source            TEXT NOT NULL,
    -- `txt`, `md`, `csv`, `json` (how the content is chunked).
    kind              TEXT NOT NULL CHECK (kind IN ('txt', 'md', 'csv', 'json')),
    -- `document` (upload) or `ingest` (raw text): the event it emits.
    origin            TEXT NOT NULL CHECK (origin IN ('document', 'ingest')),
    content           TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- Not before (failed attempts back off).
    run_after         TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX kb_index_jobs_kb_idx ON kb_index_jobs (knowledge_base_id, source);
