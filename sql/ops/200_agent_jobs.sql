-- One row is one piece of work for an agent worker: a trigger that fired for one user, with
-- the triggering event (or opportunity facts), the goal, and where the job is in its life.
-- dedup_key makes a replayed trigger a no-op; claims use FOR UPDATE SKIP LOCKED and a
-- visibility timeout (locked_until), so a crashed worker's job comes back after it expires.
CREATE TABLE agent_jobs (
    job_id        text PRIMARY KEY,
    dedup_key     text NOT NULL UNIQUE,
    trigger_name  text NOT NULL,
    user_id       text NOT NULL,
    goal          text NOT NULL,
    tools         text[] NOT NULL,
    event         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 3,
    run_after     timestamptz NOT NULL,
    locked_until  timestamptz,
    locked_by     text,
    deadline      timestamptz NOT NULL,
    last_error    text,
    decision_id   text NOT NULL,
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz
);

CREATE INDEX agent_jobs_ready ON agent_jobs (run_after) WHERE status = 'queued';
CREATE INDEX agent_jobs_leased ON agent_jobs (locked_until) WHERE status = 'running';
CREATE INDEX agent_jobs_user ON agent_jobs (user_id, created_at DESC);
