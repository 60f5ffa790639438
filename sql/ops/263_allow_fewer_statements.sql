-- No rows: mca_allow (sql/ops/262) in four SQL statements instead of ten, and without the
-- foreign keys budget_ledger/outbox -> tool_calls.
-- - The foreign keys cost seven index probes and row locks per allowed call (one per ledger row,
--   one for the outbox row). Every row of these tables is written in the transaction that writes
--   or moves on its tool call, with the call's own id (mca_allow; the dispatcher's releases copy
--   ledger rows; the ledger's recorded verdicts select the call by its key), and no tool call is
--   ever deleted, so they guarded nothing a writer could get wrong.
-- - The outbox row, the audit row and every contact check (suppression, contact caps, minimum
--   gaps) are one statement: the refusing check is the first (lowest index) that failed, as when
--   they ran one by one, since the checks are given in that order. A suppressed call now also
--   moves its counters before it is refused: the refusal undoes them with everything else.
ALTER TABLE budget_ledger DROP CONSTRAINT budget_ledger_call_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_call_id_fkey;

CREATE OR REPLACE FUNCTION mca_allow(c jsonb, checks jsonb) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    at timestamptz := (c ->> 'now')::timestamptz;
    id bigint;
    box bigint := nextval('outbox_outbox_id_seq'::regclass);
    missing integer;
    wanted bigint;
    got bigint;
    in_order boolean;
    stored jsonb;
BEGIN
    IF (c ->> 'first')::boolean THEN
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
    -- The contact counters in one upsert and the minimum gaps in another, each in the order given
    -- (one lock order for every caller); a counter or gap that did not move refuses.
    WITH x AS (
        SELECT value AS v, (value ->> 'check')::integer AS n, value ->> 'kind' AS kind
        FROM jsonb_array_elements(checks)
    ), caps AS (
        SELECT n, v ->> 'user_id' AS user_id, v ->> 'channel' AS channel, v ->> 'period' AS period,
               v ->> 'key' AS pkey, (v ->> 'cap')::integer AS cap
        FROM x WHERE kind = 'contact_cap'
    ), gaps AS (
        SELECT n, v ->> 'user_id' AS user_id, v ->> 'channel' AS channel,
               (v ->> 'threshold')::timestamptz AS threshold
        FROM x WHERE kind = 'min_gap'
    ), boxed AS (
        INSERT INTO outbox (outbox_id, call_id, idem_key, kind, user_id, payload, status, next_attempt_at,
                            created_at, updated_at)
        OVERRIDING SYSTEM VALUE
        VALUES (box, id, c ->> 'key', c ->> 'kind', c ->> 'user_id', c -> 'payload', c ->> 'outbox_status',
                at, at, at)
    ), audited AS (
        INSERT INTO audit_log (at, caller, trigger_name, decision_id, tool, user_id, arguments, verdict, reasons,
                               message, call_id, policy_version)
        VALUES (at, c ->> 'caller', c ->> 'trigger', c ->> 'decision_id', c ->> 'tool', c ->> 'user_id',
                c -> 'arguments', 'allow', '[]', c ->> 'message', id, c ->> 'policy_version')
    ), counted AS (
        INSERT INTO contact_counters AS cc (user_id, channel, period, period_key, sent, updated_at)
        SELECT k.user_id, k.channel, k.period, k.pkey, 1, at FROM caps k ORDER BY k.n
        ON CONFLICT (user_id, channel, period, period_key)
        DO UPDATE SET sent = cc.sent + 1, updated_at = EXCLUDED.updated_at
        WHERE cc.sent < (SELECT k.cap FROM caps k WHERE k.channel = cc.channel AND k.period = cc.period
                         AND k.pkey = cc.period_key)
        RETURNING cc.channel, cc.period, cc.period_key
    ), spaced AS (
        INSERT INTO contact_last AS l (user_id, channel, last_at)
        SELECT g.user_id, g.channel, at FROM gaps g ORDER BY g.n
        ON CONFLICT (user_id, channel) DO UPDATE SET last_at = EXCLUDED.last_at
        WHERE l.last_at <= (SELECT g.threshold FROM gaps g WHERE g.channel = l.channel)
        RETURNING l.channel
    )
    SELECT least(
        (SELECT min(x.n) FROM x JOIN suppressions s
         ON s.user_id = x.v ->> 'user_id' AND s.channel = x.v ->> 'channel' WHERE x.kind = 'suppression'),
        (SELECT min(k.n) FROM caps k WHERE NOT EXISTS (
            SELECT 1 FROM counted u WHERE u.channel = k.channel AND u.period = k.period AND u.period_key = k.pkey)),
        (SELECT min(g.n) FROM gaps g WHERE NOT EXISTS (SELECT 1 FROM spaced s WHERE s.channel = g.channel)))
    INTO missing;
    IF missing IS NOT NULL THEN
        PERFORM mca_refuse_check(missing);
    END IF;
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
