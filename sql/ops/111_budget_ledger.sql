-- One row is one movement on a budget counter: a reservation written in the same transaction
-- as the allowed tool call and its outbox row, or the release of that reservation when the
-- action was never delivered (dead-lettered or suppressed).
CREATE TABLE budget_ledger (
    entry_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id    bigint NOT NULL REFERENCES tool_calls (call_id),
    scope      varchar NOT NULL,
    period_key varchar NOT NULL,
    amount     numeric NOT NULL,
    kind       varchar NOT NULL CHECK (kind IN ('reserve', 'release')),
    created_at timestamptz NOT NULL
);
CREATE INDEX budget_ledger_call ON budget_ledger (call_id);
