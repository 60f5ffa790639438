-- No rows: when each delivered or withheld outbox row was written into the event stream as
-- mca's own action event (mcp_tools/announce.py).
-- The outbox is also the outbox of these events: a row is announced after it is delivered (or
-- recorded as shadow), in its own step, so a transport that is down delays the event and never
-- the delivery. Event ids derive from the call, so announcing twice stores one event.
ALTER TABLE outbox ADD COLUMN announced_at timestamptz;
CREATE INDEX outbox_unannounced ON outbox (outbox_id)
    WHERE announced_at IS NULL AND status IN ('delivered', 'shadow');
