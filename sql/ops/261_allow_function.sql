-- No rows: mca_allow(call, checks) is the whole allow attempt of one tool call in one statement,
-- so one round trip (and, called in autocommit, one implicit transaction) instead of a pipeline
-- of a dozen: the call row (inserted, or moved on when a released call is judged again), the
-- atomic checks in the order given (suppression, contact caps, minimum gaps, then the budgets,
-- reserved last so their shared rows are locked for the shortest time), the outbox and audit
-- rows, and the stored result. A refusing check raises MCA02 with its index (mca_refuse_check),
-- which undoes everything; shadow mode raises MCA03 once everything was decided. Returns the
-- stored result (first call) or {call_id, outbox_id}. Its plpgsql statements are planned once
-- per session.
CREATE FUNCTION mca_allow(c jsonb, checks jsonb) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    at timestamptz := (c ->> 'now')::timestamptz;
    id bigint;
    box bigint;
    ch jsonb;
    i integer;
    stored jsonb;
BEGIN
    IF (c ->> 'first')::boolean THEN
        INSERT INTO tool_calls (idem_key, decision_id, caller, trigger_name, tool, user_id, arguments, verdict,
                                status, reason, result, policy_version, created_at, updated_at)
        VALUES (c ->> 'key', c ->> 'decision_id', c ->> 'caller', c ->> 'trigger', c ->> 'tool', c ->> 'user_id',
                c -> 'arguments', 'allow', 'allowed', NULL, '{}', c ->> 'policy_version', at, at)
        RETURNING call_id INTO id;
    ELSE
        UPDATE tool_calls SET status = 'allowed', reason = NULL, updated_at = at
        WHERE idem_key = c ->> 'key' RETURNING call_id INTO id;
    END IF;
    FOR ch IN SELECT value FROM jsonb_array_elements(checks) LOOP
        i := (ch ->> 'check')::integer;
        CASE ch ->> 'kind'
        WHEN 'suppression' THEN
            IF EXISTS (SELECT 1 FROM suppressions s
                       WHERE s.user_id = ch ->> 'user_id' AND s.channel = ch ->> 'channel') THEN
                PERFORM mca_refuse_check(i);
            END IF;
        WHEN 'contact_cap' THEN
            INSERT INTO contact_counters AS cc (user_id, channel, period, period_key, sent, updated_at)
            VALUES (ch ->> 'user_id', ch ->> 'channel', ch ->> 'period', ch ->> 'key', 1, at)
            ON CONFLICT (user_id, channel, period, period_key)
            DO UPDATE SET sent = cc.sent + 1, updated_at = EXCLUDED.updated_at
            WHERE cc.sent < (ch ->> 'cap')::integer;
            IF NOT FOUND THEN
                PERFORM mca_refuse_check(i);
            END IF;
        WHEN 'min_gap' THEN
            INSERT INTO contact_last AS l (user_id, channel, last_at) VALUES (ch ->> 'user_id', ch ->> 'channel', at)
            ON CONFLICT (user_id, channel) DO UPDATE SET last_at = EXCLUDED.last_at
            WHERE l.last_at <= (ch ->> 'threshold')::timestamptz;
            IF NOT FOUND THEN
                PERFORM mca_refuse_check(i);
            END IF;
        ELSE
            NULL;  -- budgets: below, after the effects
        END CASE;
    END LOOP;
    INSERT INTO outbox (call_id, idem_key, kind, user_id, payload, status, next_attempt_at, created_at, updated_at)
    VALUES (id, c ->> 'key', c ->> 'kind', c ->> 'user_id', c -> 'payload', c ->> 'outbox_status', at, at, at)
    RETURNING outbox_id INTO box;
    INSERT INTO audit_log (at, caller, trigger_name, decision_id, tool, user_id, arguments, verdict, reasons,
                           message, call_id, policy_version)
    VALUES (at, c ->> 'caller', c ->> 'trigger', c ->> 'decision_id', c ->> 'tool', c ->> 'user_id',
            c -> 'arguments', 'allow', '[]', c ->> 'message', id, c ->> 'policy_version');
    FOR ch IN SELECT value FROM jsonb_array_elements(checks) WHERE value ->> 'kind' = 'budget' LOOP
        PERFORM mca_reserve(ch ->> 'scope', ch ->> 'key', (ch ->> 'limit')::numeric, (ch ->> 'amount')::numeric,
                            (ch ->> 'shards')::integer, (ch ->> 'check')::integer, at, c ->> 'key');
    END LOOP;
    IF (c ->> 'shadow')::boolean THEN
        PERFORM mca_shadow_stop();
    END IF;
    stored := jsonb_build_object('call_id', id, 'outbox_id', box);
    IF (c ->> 'first')::boolean THEN
        stored := (c -> 'result') || stored;
        UPDATE tool_calls SET result = stored WHERE call_id = id;
    END IF;
    RETURN stored;
END
$$;
