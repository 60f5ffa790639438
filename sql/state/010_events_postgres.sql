-- One row is one customer event accepted by POST /ingest (or the Kafka sink worker).
-- engine: postgres
-- event_id is the dedup key: a redelivered event hits the primary key and is dropped.
-- seq and xid exist for the trigger service: it tails this table by seq, but only up to
-- the oldest transaction still in flight (xid), because sequence order is not commit order.
CREATE TABLE events (
    event_id    text PRIMARY KEY,
    user_id     text NOT NULL,
    event_type  text NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL DEFAULT 'api',
    value       numeric(14, 2),
    points      integer,
    sku         text,
    category    text,
    text        text,
    properties  jsonb NOT NULL DEFAULT '{}'::jsonb,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);

CREATE INDEX events_user_ts ON events (user_id, ts DESC);
CREATE UNIQUE INDEX events_seq ON events (seq);
