-- No rows: the change stream of `events` the trigger service reads with a subscription
-- cursor (RisingWave has no LISTEN/NOTIFY). Retention bounds how long a stopped trigger
-- service can be down and still resume without a gap.
-- engine: risingwave
CREATE SUBSCRIPTION events_changes FROM events WITH (retention = '7D');
