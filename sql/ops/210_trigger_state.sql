-- One row is one stream source's resume point (PostgreSQL: the last (xid, seq) processed;
-- RisingWave: the last rw_timestamp), written in the same transaction as the jobs it made.
CREATE TABLE trigger_positions (
    source      text PRIMARY KEY,
    position    jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- One row is the last time a trigger fired for one user; trigger_name '*' is the per-user
-- cooldown across all triggers.
CREATE TABLE trigger_cooldowns (
    trigger_name text NOT NULL,
    user_id      text NOT NULL,
    fired_at     timestamptz NOT NULL,
    PRIMARY KEY (trigger_name, user_id)
);

-- One row is one opportunity query's schedule: when it last ran and how many jobs it made.
CREATE TABLE trigger_schedule (
    query_name  text PRIMARY KEY,
    last_run_at timestamptz NOT NULL,
    last_jobs   integer NOT NULL DEFAULT 0
);
