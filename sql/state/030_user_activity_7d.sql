-- One row per user with an event in the last 7 days: their sessions, purchases and spend
-- in that window.
-- Kept apart from user_stats because RisingWave allows now() only as a temporal filter in
-- WHERE; rows leave this view as they age past 7 days.
CREATE MATERIALIZED VIEW user_activity_7d AS
SELECT
    user_id,
    count(*) FILTER (WHERE event_type = 'session_start') AS sessions_7d,
    count(*) FILTER (WHERE event_type = 'purchase') AS purchases_7d,
    coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0) AS spend_7d
FROM events
WHERE ts > now() - INTERVAL '7 days'
GROUP BY user_id;
