-- One row per customer, trigger and experiment, as the portable experiment_exposures of file
-- 310 (same columns, same rows), computed in one pass on PostgreSQL.
-- engine: postgres
-- Here views are computed at read time. The portable view is a union of an open and a closed
-- half because RisingWave allows now() only as a temporal filter; on PostgreSQL each half
-- computed the whole of experiment_outcomes, so the report read everything twice. `pending`
-- as a column reads it once; the portable SQL stays as experiment_exposures_recomputed.
CREATE VIEW experiment_exposures AS
SELECT *, window_ends_at > now() AS pending FROM experiment_outcomes;
