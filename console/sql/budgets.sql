-- Spend against every budget in its current and recent periods (a shared budget's shards summed).
SELECT scope, period_key, limit_amount, spent, updated_at
FROM budget_totals
ORDER BY scope, period_key DESC
LIMIT 200
