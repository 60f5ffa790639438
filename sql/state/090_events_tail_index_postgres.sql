-- No rows: the index the trigger service tails `events` by on PostgreSQL.
-- engine: postgres
-- The tail reads rows in (xid, seq) order below the oldest in-flight transaction: every
-- transaction older than that has finished, so the set of such rows never grows behind the
-- reader's position. Reading by seq alone would skip a row whose transaction commits after a
-- higher seq was already read.
CREATE INDEX events_xid_seq ON events (xid, seq);
