-- One row per user with at least one event: unified_context as in file 060, its stats now
-- carrying mca's own touches (last_contacted_at, contacts_7d, offers_outstanding) as columns
-- and in the context document the agent reads.
-- The new columns come after `context` so that PostgreSQL's twin (file 165) can be replaced
-- in place. On PostgreSQL this reads the maintained views (file 103); on RisingWave file 162
-- already dropped the old view.
DROP MATERIALIZED VIEW IF EXISTS unified_context;
CREATE MATERIALIZED VIEW unified_context AS
SELECT
    s.user_id,
    p.first_name,
    p.phone,
    p.email,
    p.timezone,
    p.tier,
    p.consent_sms,
    p.consent_email,
    p.consent_push,
    p.do_not_contact,
    p.birthday,
    s.first_seen,
    s.last_seen,
    s.events_total,
    s.purchases,
    s.lifetime_value,
    s.points_balance,
    s.last_purchase_at,
    s.last_purchase_sku,
    s.last_purchase_category,
    s.churn_score,
    s.open_tickets,
    s.sessions_7d,
    s.purchases_7d,
    s.spend_7d,
    jsonb_build_object(
        'user_id', s.user_id,
        'profile', jsonb_build_object(
            'first_name', p.first_name,
            'tier', p.tier,
            'timezone', p.timezone,
            'birthday', p.birthday,
            'consent', jsonb_build_object(
                'sms', p.consent_sms,
                'email', p.consent_email,
                'push', p.consent_push,
                'do_not_contact', p.do_not_contact
            ),
            'reachable', jsonb_build_object(
                'sms', p.phone IS NOT NULL,
                'email', p.email IS NOT NULL
            )
        ),
        'stats', jsonb_build_object(
            'first_seen', s.first_seen,
            'last_seen', s.last_seen,
            'events_total', s.events_total,
            'purchases', s.purchases,
            'lifetime_value', s.lifetime_value,
            'points_balance', s.points_balance,
            'last_purchase_at', s.last_purchase_at,
            'last_purchase_sku', s.last_purchase_sku,
            'last_purchase_category', s.last_purchase_category,
            'churn_score', s.churn_score,
            'open_tickets', s.open_tickets,
            'sessions_7d', s.sessions_7d,
            'purchases_7d', s.purchases_7d,
            'spend_7d', s.spend_7d,
            'last_contacted_at', s.last_contacted_at,
            'contacts_7d', s.contacts_7d,
            'offers_outstanding', s.offers_outstanding
        ),
        'recent_events', coalesce(c.events, CAST('[]' AS jsonb))
    ) AS context,
    s.last_contacted_at,
    s.contacts_7d,
    s.offers_outstanding
FROM user_stats AS s
LEFT JOIN user_profile AS p ON p.user_id = s.user_id
LEFT JOIN event_chronology AS c ON c.user_id = s.user_id;
