-- No rows: the approximate-nearest-neighbour index behind asset search on PostgreSQL.
-- engine: postgres
CREATE INDEX assets_embedding_hnsw ON assets USING hnsw (embedding vector_cosine_ops);
CREATE INDEX assets_kind_category ON assets (kind, category);
