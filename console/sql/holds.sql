-- Actions waiting for an operator (held) or for their time (deferred), oldest first.
SELECT p.pending_id, p.kind, p.due_at, p.created_at, t.tool, t.user_id, t.caller, t.trigger_name,
       t.decision_id, t.arguments
FROM pending_actions p JOIN tool_calls t USING (call_id)
WHERE p.status = 'waiting'
ORDER BY p.pending_id
LIMIT 200
