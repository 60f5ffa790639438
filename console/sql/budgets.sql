-- Spend against every budget counter in its current and recent periods.
SELECT scope, period_key, limit_amount, spent, updated_at
FROM budget_counters
ORDER BY scope, period_key DESC
LIMIT 200
