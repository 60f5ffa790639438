-- One row is one user with a positive points balance whose points expire within 30 days:
-- points lapse after 180 days without any activity, so the window is 150-180 days idle.
-- The dedup key names the last activity day, so one idle spell makes one job.
SELECT
    s.user_id,
    'points_expiring:' || s.user_id || ':' || CAST(CAST(s.last_seen AS date) AS text) AS dedup_key,
    jsonb_build_object(
        'points_balance', s.points_balance,
        'last_seen', s.last_seen,
        'expires_at', s.last_seen + INTERVAL '180 days'
    ) AS facts
FROM user_stats AS s
WHERE s.points_balance > 0
  AND s.last_seen <= CAST(%(now)s AS timestamptz) - INTERVAL '150 days'
  AND s.last_seen > CAST(%(now)s AS timestamptz) - INTERVAL '180 days';
