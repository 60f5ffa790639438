-- No rows: mca_allow (sql/ops/261) again, drawing its two ids from the sequences named once, at
-- plan time ('...'::regclass is folded into the session's cached plan), instead of asking
-- pg_get_serial_sequence for them on every call (a catalog lookup through pg_depend per id,
-- about a tenth of the function's time). The identity columns' sequences keep PostgreSQL's
-- own names (<table>_<column>_seq, checked by tests/mcp_tools/test_ledger_pipeline.py).
CREATE OR REPLACE FUNCTION mca_allow(c jsonb, checks jsonb) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    at timestamptz := (c ->> 'now')::timestamptz;
    is_first boolean := (c ->> 'first')::boolean;
    id bigint;
    box bigint := nextval('outbox_outbox_id_seq'::regclass);
    ch jsonb;
    caps jsonb;
    missing integer;
    got integer;
    shards integer[] := '{}';
    budgets jsonb := '[]';
    stored jsonb;
BEGIN
    IF is_first THEN
        id := nextval('tool_calls_call_id_seq'::regclass);
        stored := (c -> 'result') || jsonb_build_object('call_id', id, 'outbox_id', box);
        INSERT INTO tool_calls (call_id, idem_key, decision_id, caller, trigger_name, tool, user_id, arguments,
                                verdict, status, reason, result, policy_version, created_at, updated_at)
        OVERRIDING SYSTEM VALUE
        VALUES (id, c ->> 'key', c ->> 'decision_id', c ->> 'caller', c ->> 'trigger', c ->> 'tool',
                c ->> 'user_id', c -> 'arguments', 'allow', 'allowed', NULL, stored, c ->> 'policy_version', at, at);
    ELSE
        UPDATE tool_calls SET status = 'allowed', reason = NULL, updated_at = at
        WHERE idem_key = c ->> 'key' RETURNING call_id INTO id;
        stored := jsonb_build_object('call_id', id, 'outbox_id', box);
    END IF;
    FOR ch IN SELECT value FROM jsonb_array_elements(checks) WHERE value ->> 'kind' = 'suppression' LOOP
        IF EXISTS (SELECT 1 FROM suppressions s
                   WHERE s.user_id = ch ->> 'user_id' AND s.channel = ch ->> 'channel') THEN
            PERFORM mca_refuse_check((ch ->> 'check')::integer);
        END IF;
    END LOOP;
    -- Every contact counter in one upsert, in the order given (one lock order for every caller);
    -- the first counter that did not move is the refusing check.
    SELECT coalesce(jsonb_agg(value ORDER BY (value ->> 'check')::integer), '[]') INTO caps
    FROM jsonb_array_elements(checks) WHERE value ->> 'kind' = 'contact_cap';
    IF jsonb_array_length(caps) > 0 THEN
        WITH up AS (
            INSERT INTO contact_counters AS cc (user_id, channel, period, period_key, sent, updated_at)
            SELECT x ->> 'user_id', x ->> 'channel', x ->> 'period', x ->> 'key', 1, at
            FROM jsonb_array_elements(caps) WITH ORDINALITY AS t(x, n) ORDER BY n
            ON CONFLICT (user_id, channel, period, period_key)
            DO UPDATE SET sent = cc.sent + 1, updated_at = EXCLUDED.updated_at
            WHERE cc.sent < (SELECT (y ->> 'cap')::integer FROM jsonb_array_elements(caps) AS y
                             WHERE y ->> 'channel' = cc.channel AND y ->> 'period' = cc.period
                             AND y ->> 'key' = cc.period_key)
            RETURNING cc.channel, cc.period, cc.period_key
        )
        SELECT min((x ->> 'check')::integer) INTO missing FROM jsonb_array_elements(caps) AS x
        WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.channel = x ->> 'channel' AND up.period = x ->> 'period'
                                             AND up.period_key = x ->> 'key');
        IF missing IS NOT NULL THEN
            PERFORM mca_refuse_check(missing);
        END IF;
    END IF;
    FOR ch IN SELECT value FROM jsonb_array_elements(checks) WHERE value ->> 'kind' = 'min_gap' LOOP
        INSERT INTO contact_last AS l (user_id, channel, last_at) VALUES (ch ->> 'user_id', ch ->> 'channel', at)
        ON CONFLICT (user_id, channel) DO UPDATE SET last_at = EXCLUDED.last_at
        WHERE l.last_at <= (ch ->> 'threshold')::timestamptz;
        IF NOT FOUND THEN
            PERFORM mca_refuse_check((ch ->> 'check')::integer);
        END IF;
    END LOOP;
    INSERT INTO outbox (outbox_id, call_id, idem_key, kind, user_id, payload, status, next_attempt_at,
                        created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    VALUES (box, id, c ->> 'key', c ->> 'kind', c ->> 'user_id', c -> 'payload', c ->> 'outbox_status', at, at, at);
    INSERT INTO audit_log (at, caller, trigger_name, decision_id, tool, user_id, arguments, verdict, reasons,
                           message, call_id, policy_version)
    VALUES (at, c ->> 'caller', c ->> 'trigger', c ->> 'decision_id', c ->> 'tool', c ->> 'user_id',
            c -> 'arguments', 'allow', '[]', c ->> 'message', id, c ->> 'policy_version');
    -- Budgets last, in the order given (sorted by scope: one lock order for every caller).
    FOR ch IN SELECT value FROM jsonb_array_elements(checks) WHERE value ->> 'kind' = 'budget'
              ORDER BY (value ->> 'check')::integer LOOP
        IF (ch ->> 'shards')::integer = 1 THEN
            got := mca_reserve_one(ch ->> 'scope', ch ->> 'key', (ch ->> 'limit')::numeric,
                                     (ch ->> 'amount')::numeric, at);
            IF got IS NULL THEN
                PERFORM mca_refuse_check((ch ->> 'check')::integer);
            END IF;
        ELSE
            got := mca_reserve(ch ->> 'scope', ch ->> 'key', (ch ->> 'limit')::numeric, (ch ->> 'amount')::numeric,
                                 (ch ->> 'shards')::integer, (ch ->> 'check')::integer, at);
        END IF;
        shards := shards || got;
        budgets := budgets || jsonb_build_array(ch);
    END LOOP;
    INSERT INTO budget_ledger (call_id, scope, period_key, shard, amount, kind, created_at)
    SELECT id, x ->> 'scope', x ->> 'key', shards[n], (x ->> 'amount')::numeric, 'reserve', at
    FROM jsonb_array_elements(budgets) WITH ORDINALITY AS t(x, n);
    IF (c ->> 'shadow')::boolean THEN
        PERFORM mca_shadow_stop();
    END IF;
    RETURN stored;
END
$$;
