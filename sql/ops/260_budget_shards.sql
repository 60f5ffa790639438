-- One row of budget_counters is now one shard of one budget in one period: `quota` is the part
-- of the limit this shard may hand out, `spent` what it has handed out. The quotas of a budget's
-- shards always sum to its limit and no shard spends past its quota, so the budget is never
-- overspent; callers reserve on different shards, so a shared budget (global, per trigger, per
-- asset) is no longer one row every caller queues on. A shard out of quota takes headroom from
-- the others under all of their locks (mca_reserve). One row of budget_totals is one budget.
ALTER TABLE budget_counters ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE budget_counters ADD COLUMN quota numeric;
UPDATE budget_counters SET quota = limit_amount;
ALTER TABLE budget_counters ALTER COLUMN quota SET NOT NULL;
ALTER TABLE budget_counters ADD CONSTRAINT budget_counters_within_quota CHECK (spent <= quota);
ALTER TABLE budget_counters DROP CONSTRAINT budget_counters_pkey;
ALTER TABLE budget_counters ADD PRIMARY KEY (scope, period_key, shard);
ALTER TABLE budget_ledger ADD COLUMN shard smallint NOT NULL DEFAULT 0;

CREATE VIEW budget_totals AS
SELECT scope, period_key, max(limit_amount) AS limit_amount, sum(spent) AS spent,
       count(*) AS shards, max(updated_at) AS updated_at
FROM budget_counters
GROUP BY scope, period_key;

-- Reserve `amount` of budget (scope, key) under `lim`, on one of `shards` shards, and return the
-- shard (the caller's ledger row names it); raise mca_refuse_check(check_index) when the budget has no room. Fast path:
-- the first shard (from this backend's own) with quota left that no one else holds. Otherwise
-- every shard is locked in shard order and the headroom is dealt out again, so a refusal is
-- exact: it sees every committed reservation and no uncommitted one is left in flight.
CREATE FUNCTION mca_reserve(
    p_scope varchar, p_key varchar, lim numeric, amount numeric, shards integer, check_index integer,
    p_now timestamptz
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    mine integer := pg_backend_pid() % shards;
    chosen integer;
    total numeric;
    mine_spent numeric;
    n integer;
    share numeric;
BEGIN
    UPDATE budget_counters u SET spent = u.spent + amount, updated_at = p_now
    WHERE u.scope = p_scope AND u.period_key = p_key AND u.shard = (
        SELECT b.shard FROM budget_counters b
        WHERE b.scope = p_scope AND b.period_key = p_key AND b.limit_amount = lim AND b.spent + amount <= b.quota
        ORDER BY (b.shard - mine + 32768) % 32768
        LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING u.shard INTO chosen;
    IF FOUND THEN
        RETURN chosen;
    END IF;
    -- Every shard with quota left is held by a call in flight: wait for one of them (its
    -- call may still roll back) rather than lock every shard.
    SELECT b.shard INTO chosen FROM budget_counters b
    WHERE b.scope = p_scope AND b.period_key = p_key AND b.limit_amount = lim AND b.spent + amount <= b.quota
    ORDER BY (b.shard - mine + 32768) % 32768
    LIMIT 1 FOR UPDATE;
    IF FOUND THEN
        UPDATE budget_counters SET spent = spent + amount, updated_at = p_now
        WHERE scope = p_scope AND period_key = p_key AND shard = chosen;
    ELSE
        INSERT INTO budget_counters (scope, period_key, shard, limit_amount, quota, spent, updated_at)
        SELECT p_scope, p_key, g, lim, 0, 0, p_now FROM generate_series(0, shards - 1) AS g
        ON CONFLICT DO NOTHING;
        PERFORM 1 FROM budget_counters b WHERE b.scope = p_scope AND b.period_key = p_key
        ORDER BY b.shard FOR UPDATE;
        SELECT sum(b.spent), count(*) INTO total, n FROM budget_counters b
        WHERE b.scope = p_scope AND b.period_key = p_key;
        IF amount > lim - total THEN
            RETURN mca_refuse_check(check_index);
        END IF;
        SELECT b.shard, b.spent INTO chosen, mine_spent FROM budget_counters b
        WHERE b.scope = p_scope AND b.period_key = p_key
        ORDER BY (b.shard - mine + 32768) % 32768 LIMIT 1;
        -- Every other shard gets an equal part of what is left after this call (rounded down);
        -- this one gets the rest, so the quotas sum to the limit exactly.
        share := trunc((lim - total - amount) / n, 6);
        UPDATE budget_counters SET limit_amount = lim, quota = spent + share, updated_at = p_now
        WHERE scope = p_scope AND period_key = p_key AND shard <> chosen;
        UPDATE budget_counters
        SET limit_amount = lim, quota = lim - (total - mine_spent) - (n - 1) * share,
            spent = spent + amount, updated_at = p_now
        WHERE scope = p_scope AND period_key = p_key AND shard = chosen;
    END IF;
    RETURN chosen;
END
$$;
