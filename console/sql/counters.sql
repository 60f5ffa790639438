-- What happened since %(since)s (the Live page's last-hour counters).
SELECT
    (SELECT count(*) FROM agent_jobs WHERE created_at > %(since)s) AS triggers,
    (SELECT count(*) FROM decisions WHERE finished_at > %(since)s) AS decisions,
    (SELECT count(*) FROM audit_log WHERE at > %(since)s AND verdict = 'allow') AS allowed,
    (SELECT count(*) FROM audit_log WHERE at > %(since)s AND verdict = 'deny') AS denied,
    (SELECT count(*) FROM audit_log WHERE at > %(since)s AND verdict = 'hold') AS held,
    (SELECT count(*) FROM outbox WHERE delivered_at > %(since)s) AS delivered
