-- No rows: the index that bounds reading one user's latest events (event_chronology, file 103).
-- engine: postgres
CREATE INDEX IF NOT EXISTS events_user_ts_event ON events (user_id, ts DESC, event_id DESC);
