-- One row is one customer event, fed by the Kafka topic the ingest gateway produces to.
-- engine: risingwave
-- The table keeps the Kafka connector and still accepts INSERT (the direct transport).
-- The primary key makes a redelivered event overwrite itself instead of counting twice.
CREATE TABLE events (
    event_id    varchar PRIMARY KEY,
    user_id     varchar NOT NULL,
    event_type  varchar NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz,
    source      varchar,
    value       numeric,
    points      integer,
    sku         varchar,
    category    varchar,
    text        varchar,
    properties  jsonb
) WITH (
    connector = 'kafka',
    topic = '{{kafka_topic}}',
    properties.bootstrap.server = '{{kafka_brokers}}',
    scan.startup.mode = 'earliest'
) FORMAT PLAIN ENCODE JSON;
