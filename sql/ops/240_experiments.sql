-- One row per decision the allocator chose an arm for (decision_allocations); and, on every
-- job, the experiment group its customer was in when the trigger fired.
-- experiment_group: holdout (never contacted), control (decided and recorded, nothing sent)
-- or treatment; experiment names the salt that assigned it, so a new salt starts a new
-- experiment while old decisions keep the group they had. NULL on jobs made before this file.
-- An allocation records the arm chosen among the guard-allowed candidates, the probability
-- it was chosen with (what off-policy evaluation divides by), the selection mode and every
-- candidate with its probability.
ALTER TABLE agent_jobs ADD COLUMN experiment_group text
    CHECK (experiment_group IN ('holdout', 'control', 'treatment'));
ALTER TABLE agent_jobs ADD COLUMN experiment text;

CREATE TABLE decision_allocations (
    decision_id text PRIMARY KEY,
    arm         text NOT NULL,
    propensity  double precision NOT NULL CHECK (propensity > 0 AND propensity <= 1),
    mode        text NOT NULL CHECK (mode IN ('model', 'bandit', 'explore')),
    candidates  jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
