-- One row is one guard verdict, denials included: who asked (caller), under which trigger and
-- decision, which tool with which arguments, the verdict and all its reasons, and the policy
-- version that decided. Append-only; `mca audit export` reads it.
CREATE TABLE audit_log (
    audit_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    caller         varchar NOT NULL,
    trigger_name   varchar,
    decision_id    varchar,
    tool           varchar NOT NULL,
    user_id        varchar,
    arguments      jsonb NOT NULL,
    verdict        varchar NOT NULL,
    reasons        jsonb NOT NULL,
    message        varchar,
    call_id        bigint,
    policy_version varchar NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
