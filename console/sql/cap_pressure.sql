-- Frequency-cap pressure: customers and messages counted in today's and this week's periods.
SELECT period, period_key, channel, count(*) AS customers, sum(sent) AS messages, max(sent) AS most
FROM contact_counters
WHERE period IN ('day', 'week')
GROUP BY 1, 2, 3
ORDER BY 2 DESC, 1, 3
LIMIT 30
