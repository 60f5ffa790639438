-- Guard denials since %(since)s by reason and hour (a denial with several reasons counts under each).
SELECT date_trunc('hour', a.at) AS hour, r.reason, count(*) AS n
FROM audit_log a CROSS JOIN LATERAL jsonb_array_elements_text(a.reasons) AS r(reason)
WHERE a.at > %(since)s AND a.verdict = 'deny'
GROUP BY 1, 2
ORDER BY 1, 2
