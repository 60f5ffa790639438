-- The last holds an operator decided, with who decided and how the call ended.
SELECT p.pending_id, p.status, p.decided_by, p.updated_at, t.tool, t.user_id, t.status AS call_status,
       o.status AS delivery
FROM pending_actions p JOIN tool_calls t USING (call_id) LEFT JOIN outbox o USING (call_id)
WHERE p.kind = 'hold' AND p.status <> 'waiting'
ORDER BY p.updated_at DESC
LIMIT 20
