-- One row is one agent decision: the job it answers, the context it saw, the brain and
-- prompt version that reasoned, the outcome and rationale, and its cost (latency, tokens).
-- decision_id is stable across retries of the same job, so tool-call idempotency keys built
-- from it make a retried decision send nothing twice; attempt counts those retries.
CREATE TABLE decisions (
    decision_id    text PRIMARY KEY,
    job_id         text NOT NULL,
    trigger_name   text NOT NULL,
    user_id        text NOT NULL,
    attempt        integer NOT NULL,
    goal           text NOT NULL,
    allowed_tools  text[] NOT NULL,
    trigger_event  jsonb NOT NULL,
    context        jsonb,
    brain          text NOT NULL,
    model          text NOT NULL,
    prompt_version text NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('acted', 'nothing', 'limit', 'failed')),
    rationale      text NOT NULL,
    model_calls    integer NOT NULL,
    tool_calls     integer NOT NULL,
    tokens_in      integer NOT NULL,
    tokens_out     integer NOT NULL,
    latency_ms     double precision NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL
);

CREATE INDEX decisions_user ON decisions (user_id, finished_at DESC);

-- One row is one step of a decision, in order: a message (system, user, assistant, tool)
-- or a tool call with its arguments, the guard's verdict and reason code, and its latency.
CREATE TABLE decision_steps (
    decision_id  text NOT NULL REFERENCES decisions (decision_id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    step_no      integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('message', 'tool_call')),
    role         text,
    content      text,
    tool_name    text,
    arguments    jsonb,
    verdict      text,
    reason_code  text,
    result       jsonb,
    latency_ms   double precision,
    PRIMARY KEY (decision_id, attempt, step_no)
);
