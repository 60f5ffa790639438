-- One row is one outbox delivery the `log` provider has written, keyed by the outbox row's
-- idempotency key: a row delivered again after a dispatcher crash finds its key here and logs
-- nothing a second time.
CREATE TABLE log_deliveries (
    idem_key     varchar PRIMARY KEY,
    outbox_id    bigint NOT NULL,
    delivered_at timestamptz NOT NULL
);
