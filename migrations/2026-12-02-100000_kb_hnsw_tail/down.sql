DROP INDEX kb_chunks_hnsw_pending_idx;
DROP INDEX kb_chunks_embedding_idx;
ALTER TABLE kb_chunks DROP COLUMN hnsw_pending;
CREATE INDEX kb_chunks_embedding_idx ON kb_chunks USING hnsw (embedding vector_cosine_ops);
