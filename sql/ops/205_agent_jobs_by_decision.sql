-- No rows: the guard reads a decision's tools, trigger and customer from its job by decision id
-- on every tool call (mcp_tools/scope.py), so that lookup must be an index scan.
CREATE INDEX agent_jobs_decision ON agent_jobs (decision_id);
