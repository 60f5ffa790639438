-- On every job (agent_jobs), the selection mode its trigger had when it fired: model (the
-- brain's own choice), bandit (Thompson sampling among the brain's guard-allowed candidates)
-- or explore (uniform among them). Stored on the job like its tools, so an edit of the
-- triggers file never changes how an already queued decision is made.
ALTER TABLE agent_jobs ADD COLUMN selection text NOT NULL DEFAULT 'model'
    CHECK (selection IN ('model', 'bandit', 'explore'));
