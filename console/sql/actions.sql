-- Every side-effecting call for one customer, newest first, with its delivery.
SELECT t.call_id, t.created_at, t.tool, t.trigger_name, t.decision_id, t.verdict, t.status, t.reason,
       t.arguments, o.status AS delivery, o.provider, o.delivered_at
FROM tool_calls t LEFT JOIN outbox o USING (call_id)
WHERE t.user_id = %(user_id)s
ORDER BY t.created_at DESC
LIMIT 50
