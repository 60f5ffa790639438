-- One row is one tool call that waits: deferred until `due_at` (quiet hours), re-evaluated by
-- the dispatcher's scheduler when due; or held for an operator (`mca approve ID` / `mca reject
-- ID`, where ID is pending_id). status: waiting -> done | rejected.
CREATE TABLE pending_actions (
    pending_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id    bigint NOT NULL REFERENCES tool_calls (call_id),
    kind       varchar NOT NULL CHECK (kind IN ('defer', 'hold')),
    due_at     timestamptz,
    status     varchar NOT NULL,
    outcome    jsonb,
    decided_by varchar,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX pending_actions_due ON pending_actions (due_at) WHERE status = 'waiting';
CREATE INDEX pending_actions_call ON pending_actions (call_id);
