-- The live feed: triggers (jobs), decisions, guard verdicts (audit) and finished deliveries
-- newer than %(since)s, newest first, each with one id the page de-duplicates on.
SELECT * FROM (
    SELECT 'trigger' AS kind, 'job:' || job_id AS item_id, created_at AS at, trigger_name, user_id,
           status AS verdict, goal AS detail, decision_id
    FROM agent_jobs WHERE created_at > %(since)s
    UNION ALL
    SELECT 'decision', 'dec:' || decision_id, finished_at, trigger_name, user_id, outcome, rationale,
           decision_id
    FROM decisions WHERE finished_at > %(since)s
    UNION ALL
    SELECT 'verdict', 'audit:' || audit_id, at, trigger_name, user_id, verdict,
           tool || coalesce(' ' || nullif((SELECT string_agg(r, ', ') FROM jsonb_array_elements_text(reasons) r), ''), ''),
           decision_id
    FROM audit_log WHERE at > %(since)s
    UNION ALL
    SELECT 'delivery', 'out:' || o.outbox_id || ':' || o.status, o.updated_at, t.trigger_name, o.user_id, o.status,
           o.kind || coalesce(' via ' || o.provider, ''), t.decision_id
    FROM outbox o JOIN tool_calls t USING (call_id)
    WHERE o.status NOT IN ('pending', 'sending') AND o.updated_at > %(since)s
) AS feed
WHERE (CAST(%(trigger)s AS text) IS NULL OR trigger_name = %(trigger)s)
  AND (CAST(%(verdict)s AS text) IS NULL OR verdict = %(verdict)s)
  AND (CAST(%(user_id)s AS text) IS NULL OR user_id = %(user_id)s)
ORDER BY at DESC
LIMIT %(limit)s
