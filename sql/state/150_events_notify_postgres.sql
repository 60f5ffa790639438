-- No rows: every statement that stores events wakes the trigger service (NOTIFY mca_events).
-- engine: postgres
-- Statement-level, so any writer (the ingest gateway, the Kafka sink, psql) wakes it once per
-- statement rather than once per row. PostgreSQL delivers a notification only when the
-- transaction commits, and folds repeats within one transaction into one. The trigger service
-- still reads by (xid, seq) below the oldest open transaction: a wake-up only says "look now".
-- RisingWave has no LISTEN/NOTIFY; there the blocking subscription FETCH waits for data.
CREATE FUNCTION mca_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mca_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION mca_events_notify();
