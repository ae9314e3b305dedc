DROP TABLE kb_index_jobs;
DROP TABLE kb_chunks;
DROP TABLE knowledge_bases;
