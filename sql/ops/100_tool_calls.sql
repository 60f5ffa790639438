-- One row is one side-effecting tool call as the guard first judged it, keyed by its
-- idempotency key (a hash of caller, decision, tool and canonical arguments): a retried call
-- finds this row and gets `result` back instead of acting again. `verdict` is the first
-- verdict; `status` follows the call's life (a deferred or held call later becomes allowed,
-- denied or rejected).
CREATE TABLE tool_calls (
    call_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idem_key       varchar NOT NULL UNIQUE,
    decision_id    varchar,
    caller         varchar NOT NULL,
    trigger_name   varchar NOT NULL,
    tool           varchar NOT NULL,
    user_id        varchar,
    arguments      jsonb NOT NULL,
    verdict        varchar NOT NULL,
    status         varchar NOT NULL,
    reason         varchar,
    result         jsonb NOT NULL,
    policy_version varchar NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX tool_calls_decision ON tool_calls (decision_id);
CREATE INDEX tool_calls_user ON tool_calls (user_id, created_at);
