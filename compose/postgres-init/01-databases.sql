-- Runs once, when the postgres volume is first initialised (the image's entrypoint).
-- mca_ops (POSTGRES_DB) already exists; RisingWave keeps its catalogue in rw_meta.
CREATE DATABASE rw_meta OWNER mca;
