-- No rows: mca_allow (sql/ops/261) with less work per allowed call.
-- - Its two ids come from the sequences named once, folded into the session's cached plan
--   ('...'::regclass), not from pg_get_serial_sequence, a catalog lookup per id per call. The
--   identity columns' sequences keep PostgreSQL's own names (<table>_<column>_seq, checked by
--   tests/mcp_tools/test_ledger_pipeline.py).
-- - Its budgets are two statements in the common case (every shared budget has a shard with
--   room that no other call holds): the shared ones at once, then the single-shard ones in one
--   upsert, ledger rows included, instead of a function call per budget and a ledger insert.
--   Otherwise the budgets go one by one, as before (mca_reserve_in_order).
-- The budgets of one allowed call, one by one in the order given (sorted by scope: one lock
-- order for every caller), each on its own terms: the shard a budget's fast path picks, or a wait
-- for one in flight, or all its shards dealt out again (mca_reserve, sql/ops/260); a refusal
-- raises MCA02 with the refusing check's index. Then the call's ledger rows.
CREATE OR REPLACE FUNCTION mca_reserve_in_order(id bigint, checks jsonb, at timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ch jsonb;
    got integer;
    shards integer[] := '{}';
    budgets jsonb := '[]';
BEGIN
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
END
$$;

CREATE OR REPLACE FUNCTION mca_allow(c jsonb, checks jsonb) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    at timestamptz := (c ->> 'now')::timestamptz;
    is_first boolean := (c ->> 'first')::boolean;
    id bigint;
    box bigint := nextval('outbox_outbox_id_seq'::regclass);
    ch jsonb;
    caps jsonb;
    missing integer;
    wanted bigint;
    got bigint;
    in_order boolean;
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
    -- Budgets last, in two statements when they can be. First the shared (sharded) budgets at
    -- once, each on a shard with room that no other call holds: SKIP LOCKED never waits, so this
    -- statement cannot take locks out of order. If one got no shard (none has room, all are held,
    -- its rows are new, its limit moved), or a single-shard budget comes before a shared one in
    -- the order given, the block's subtransaction undoes the attempt, row locks included, and the
    -- budgets are reserved one by one instead, waiting where they must (mca_reserve_in_order).
    -- Then the single-shard budgets (a customer's, a decision's), one upsert in the order given,
    -- which may wait: they come after every shared one, so the lock order is kept.
    BEGIN
        WITH want AS (
            SELECT (x ->> 'check')::integer AS n, x ->> 'scope' AS scope, x ->> 'key' AS pkey,
                   (x ->> 'limit')::numeric AS lim, (x ->> 'amount')::numeric AS amount,
                   (x ->> 'shards')::integer AS shards
            FROM jsonb_array_elements(checks) AS x WHERE x ->> 'kind' = 'budget'
        ), pick AS (
            SELECT w.scope, w.pkey, w.amount, p.shard FROM want w CROSS JOIN LATERAL (
                SELECT b.shard FROM budget_counters b
                WHERE b.scope = w.scope AND b.period_key = w.pkey AND b.limit_amount = w.lim
                  AND b.spent + w.amount <= b.quota
                ORDER BY (b.shard - pg_backend_pid() % w.shards + 32768) % 32768
                LIMIT 1 FOR UPDATE SKIP LOCKED) AS p
            WHERE w.shards > 1
        ), moved AS (
            UPDATE budget_counters u SET spent = u.spent + pick.amount, updated_at = at
            FROM pick WHERE u.scope = pick.scope AND u.period_key = pick.pkey AND u.shard = pick.shard
            RETURNING u.scope, u.period_key, u.shard, pick.amount
        ), booked AS (
            INSERT INTO budget_ledger (call_id, scope, period_key, shard, amount, kind, created_at)
            SELECT id, m.scope, m.period_key, m.shard, m.amount, 'reserve', at FROM moved m
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE shards > 1),
               coalesce(max(n) FILTER (WHERE shards > 1) < min(n) FILTER (WHERE shards = 1), true),
               (SELECT count(*) FROM booked)
        INTO wanted, in_order, got FROM want;
        IF got < wanted OR NOT in_order THEN
            RAISE SQLSTATE 'MCA04';
        END IF;
        WITH one AS (
            SELECT (x ->> 'check')::integer AS n, x ->> 'scope' AS scope, x ->> 'key' AS pkey,
                   (x ->> 'limit')::numeric AS lim, (x ->> 'amount')::numeric AS amount
            FROM jsonb_array_elements(checks) AS x
            WHERE x ->> 'kind' = 'budget' AND (x ->> 'shards')::integer = 1
        ), up AS (
            INSERT INTO budget_counters AS b (scope, period_key, shard, limit_amount, quota, spent, updated_at)
            SELECT o.scope, o.pkey, 0, o.lim, o.lim, o.amount, at FROM one o WHERE o.amount <= o.lim ORDER BY o.n
            ON CONFLICT (scope, period_key, shard) DO UPDATE
            SET spent = b.spent + EXCLUDED.spent, limit_amount = EXCLUDED.limit_amount, quota = EXCLUDED.quota,
                updated_at = EXCLUDED.updated_at
            WHERE b.spent + EXCLUDED.spent <= EXCLUDED.limit_amount
            RETURNING b.scope, b.period_key
        ), booked AS (
            INSERT INTO budget_ledger (call_id, scope, period_key, shard, amount, kind, created_at)
            SELECT id, o.scope, o.pkey, 0, o.amount, 'reserve', at
            FROM one o JOIN up ON up.scope = o.scope AND up.period_key = o.pkey
            RETURNING 1
        )
        SELECT min(o.n) INTO missing FROM one o
        WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.scope = o.scope AND up.period_key = o.pkey);
        IF missing IS NOT NULL THEN
            PERFORM mca_refuse_check(missing);
        END IF;
    EXCEPTION WHEN SQLSTATE 'MCA04' THEN
        PERFORM mca_reserve_in_order(id, checks, at);
    END;
    IF (c ->> 'shadow')::boolean THEN
        PERFORM mca_shadow_stop();
    END IF;
    RETURN stored;
END
$$;
