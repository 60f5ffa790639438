-- One row per user, under the names the app and analysts read: user_profile, user_stats and
-- event_chronology over the maintained rows of file 101 (and so unified_context, file 060).
-- engine: postgres
-- Reading one user costs primary-key lookups plus bounded index reads: at most 168 hourly
-- rows and one hour of events for the 7-day window (the user filter is pushed into both),
-- and the last 20 events (a LIMIT on the (user_id, ts, event_id) index of file 104). Columns,
-- their order and their types are those of the portable views, which keep their SQL as
-- *_recomputed here (mca/views.py): what the maintained rows are tested against.
CREATE VIEW user_profile AS
SELECT
    user_id, first_name, phone, email, timezone, tier, consent_sms, consent_email, consent_push,
    do_not_contact, birthday, profile_updated_at
FROM user_profile_live;

-- The 7-day window from hourly sums: whole hours after the window's edge, plus the events of
-- the hour the edge falls in that are inside it. Same rows for the users user_stats reads as
-- the portable user_activity_7d (a user with no session or purchase there reads zeros).
CREATE VIEW user_activity_7d_live AS
SELECT
    user_id,
    CAST(sum(sessions) AS bigint) AS sessions_7d,
    CAST(sum(purchases) AS bigint) AS purchases_7d,
    sum(spend) AS spend_7d
FROM (
    SELECT user_id, sessions, purchases, spend
    FROM user_activity_hourly_live
    WHERE hour > now() - INTERVAL '7 days'
    UNION ALL
    SELECT
        user_id,
        CASE WHEN event_type = 'session_start' THEN 1 ELSE 0 END,
        CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END,
        CASE WHEN event_type = 'purchase' THEN coalesce(value, 0) ELSE 0 END
    FROM events
    WHERE ts > now() - INTERVAL '7 days'
        AND ts < date_trunc('hour', now() - INTERVAL '7 days') + INTERVAL '1 hour'
        AND event_type IN ('session_start', 'purchase')
) AS window_parts
GROUP BY user_id;

CREATE VIEW user_stats AS
SELECT
    life.user_id,
    life.first_seen,
    life.last_seen,
    life.events_total,
    life.purchases,
    life.lifetime_value,
    life.points_earned,
    life.points_spent,
    life.points_earned - life.points_spent AS points_balance,
    life.last_purchase_at,
    life.last_purchase_sku,
    life.last_purchase_category,
    life.churn_score,
    life.churn_scored_at,
    greatest(life.tickets_opened - life.tickets_closed, 0) AS open_tickets,
    coalesce(recent.sessions_7d, 0) AS sessions_7d,
    coalesce(recent.purchases_7d, 0) AS purchases_7d,
    coalesce(recent.spend_7d, 0) AS spend_7d,
    contacts.last_contacted_at,
    coalesce(contacts_7d.contacts_7d, 0) AS contacts_7d,
    greatest(coalesce(contacts.offers_sent, 0) - coalesce(contacts.offers_redeemed, 0), 0) AS offers_outstanding
FROM user_stats_live AS life
LEFT JOIN user_activity_7d_live AS recent ON recent.user_id = life.user_id
LEFT JOIN user_contacts AS contacts ON contacts.user_id = life.user_id
LEFT JOIN user_contacts_7d AS contacts_7d ON contacts_7d.user_id = life.user_id;

CREATE VIEW event_chronology AS
SELECT life.user_id, story.events, story.events_kept
FROM user_stats_live AS life
CROSS JOIN LATERAL (
    SELECT
        jsonb_agg(
            jsonb_build_object(
                'event_id', event_id,
                'type', event_type,
                'ts', ts,
                'source', source,
                'value', value,
                'points', points,
                'sku', sku,
                'category', category,
                'text', text,
                'properties', properties - 'phone' - 'email'
            ) ORDER BY ts DESC, event_id DESC
        ) AS events,
        count(*) AS events_kept
    FROM (
        SELECT event_id, event_type, ts, source, value, points, sku, category, text, properties
        FROM events
        WHERE events.user_id = life.user_id
        ORDER BY ts DESC, event_id DESC
        LIMIT 20
    ) AS latest
) AS story;
