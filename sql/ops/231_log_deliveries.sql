-- One row is one outbox delivery made by the `log` provider, keyed by the outbox row's
-- idempotency key, with the (masked) line it logged: this table is the provider's journal of
-- deliveries. A row delivered again after a dispatcher crash finds its key here and logs nothing
-- a second time; a dispatcher killed between this insert and its log line leaves the delivery
-- here, not in the log.
CREATE TABLE log_deliveries (
    idem_key     varchar PRIMARY KEY,
    outbox_id    bigint NOT NULL,
    line         jsonb NOT NULL,
    delivered_at timestamptz NOT NULL
);
