"""The ledger's statements. Every write of a verdict goes through these, with bound parameters."""

FIND_CALL = "SELECT call_id, status, result, created_at FROM tool_calls WHERE idem_key = %s"
LAST_AT = "SELECT last_at FROM contact_last WHERE user_id = %s AND channel = %s"
INSERT_CALL = """
INSERT INTO tool_calls (idem_key, decision_id, caller, trigger_name, tool, user_id, arguments, verdict,
                        status, reason, result, policy_version, created_at, updated_at)
VALUES (%(key)s, %(decision_id)s, %(caller)s, %(trigger)s, %(tool)s, %(user_id)s, %(arguments)s,
        %(verdict)s, %(status)s, %(reason)s, '{}', %(policy_version)s, %(now)s, %(now)s)
"""
UPDATE_CALL = """
UPDATE tool_calls SET status = %(status)s, reason = %(reason)s, updated_at = %(now)s WHERE idem_key = %(key)s
"""
INSERT_OUTBOX = """
INSERT INTO outbox (call_id, idem_key, kind, user_id, payload, status, next_attempt_at,
                    created_at, updated_at)
SELECT call_id, idem_key, %(kind)s, %(user_id)s, %(payload)s, %(outbox_status)s,
       %(now)s, %(now)s, %(now)s
FROM tool_calls WHERE idem_key = %(key)s
RETURNING outbox_id
"""
INSERT_PENDING = """
INSERT INTO pending_actions (call_id, kind, due_at, status, created_at, updated_at)
SELECT call_id, %(pending_kind)s, %(until)s, 'waiting', %(now)s, %(now)s
FROM tool_calls WHERE idem_key = %(key)s
RETURNING pending_id
"""
INSERT_AUDIT = """
INSERT INTO audit_log (at, caller, trigger_name, decision_id, tool, user_id, arguments, verdict, reasons,
                       message, call_id, policy_version)
VALUES (%(now)s, %(audit_caller)s, %(trigger)s, %(decision_id)s, %(tool)s, %(user_id)s, %(arguments)s,
        %(verdict)s, %(reasons)s, %(message)s, (SELECT call_id FROM tool_calls WHERE idem_key = %(key)s),
        %(policy_version)s)
"""
# The stored result is the first answer: a retry of the same call gets exactly this back.
SET_RESULT = """
UPDATE tool_calls SET result = CAST(%(result)s AS jsonb) || jsonb_strip_nulls(jsonb_build_object(
    'call_id', call_id,
    'outbox_id', (SELECT o.outbox_id FROM outbox o WHERE o.call_id = tool_calls.call_id),
    'approval_id', CASE WHEN CAST(%(pending_kind)s AS varchar) = 'hold'
                   THEN (SELECT max(p.pending_id) FROM pending_actions p
                         WHERE p.call_id = tool_calls.call_id) END,
    'pending_id', (SELECT max(p.pending_id) FROM pending_actions p WHERE p.call_id = tool_calls.call_id)))
WHERE idem_key = %(key)s
RETURNING result
"""
AUDIT_ONLY = """
INSERT INTO audit_log (at, caller, trigger_name, decision_id, tool, user_id, arguments, verdict, reasons,
                       message, call_id, policy_version)
VALUES (%(now)s, %(caller)s, %(trigger)s, %(decision_id)s, %(tool)s, %(user_id)s, %(arguments)s, %(verdict)s,
        %(reasons)s, %(message)s, %(call_id)s, %(policy_version)s)
"""
