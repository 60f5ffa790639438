-- No rows: each job's attribution window, and when each decision was announced to the stream.
-- The window is the goal's (triggers file, `attribution:`), fixed when the trigger fires, so a
-- later edit of the file does not move the goalposts of decisions already made. A decision is
-- announced (mcp_tools/announce.py) as a `decision_recorded` event: the attribution views count
-- every triggered customer from these, sent to or not (intent to treat).
ALTER TABLE agent_jobs ADD COLUMN attribution_window_s integer CHECK (attribution_window_s > 0);
ALTER TABLE decisions ADD COLUMN announced_at timestamptz;
CREATE INDEX decisions_unannounced ON decisions (decision_id) WHERE announced_at IS NULL;
