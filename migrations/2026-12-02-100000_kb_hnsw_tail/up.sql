-- Chunks stored by the background indexer (large documents) and by a
-- re-index wait outside the HNSW graph: inserting into the graph costs
-- Postgres ~2 ms of CPU a row, taken from the cores the embedding model is
-- using, while the same rows added afterwards, in batches, cost nothing on
-- the ingest's path. Searches scan a knowledge base's waiting rows exactly
-- (through the partial index below) beside the graph, so a document is
-- searchable as soon as it is stored; the indexer then moves the rows into
-- the graph when it has no document to embed.
ALTER TABLE kb_chunks ADD COLUMN hnsw_pending BOOLEAN NOT NULL DEFAULT false;
DROP INDEX kb_chunks_embedding_idx;
CREATE INDEX kb_chunks_embedding_idx ON kb_chunks USING hnsw (embedding vector_cosine_ops)
    WHERE NOT hnsw_pending;
CREATE INDEX kb_chunks_hnsw_pending_idx ON kb_chunks (knowledge_base_id, id) WHERE hnsw_pending;
