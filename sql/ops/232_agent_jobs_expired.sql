-- A job whose decision deadline passed before any worker took it ends `expired`, not `done`:
-- it made no decision, and its trigger's cooldown is given back (agent/queue.py).
ALTER TABLE agent_jobs DROP CONSTRAINT agent_jobs_status_check;
ALTER TABLE agent_jobs ADD CONSTRAINT agent_jobs_status_check
    CHECK (status IN ('queued', 'running', 'done', 'dead', 'expired'));
