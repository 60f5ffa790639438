-- One row is one side effect an allowed call owes the world (an SMS, a coupon, a CRM update,
-- a points award), written in the same transaction as the call and its budget reservation.
-- The dispatcher claims it, delivers it with `idem_key` as the provider idempotency key, and
-- records the outcome: pending -> sending -> delivered | suppressed | dead; shadow rows are
-- never sent.
CREATE TABLE outbox (
    outbox_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id         bigint NOT NULL UNIQUE REFERENCES tool_calls (call_id),
    idem_key        varchar NOT NULL UNIQUE,
    kind            varchar NOT NULL,
    user_id         varchar NOT NULL,
    payload         jsonb NOT NULL,
    status          varchar NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    provider        varchar,
    provider_ref    varchar,
    last_error      varchar,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
