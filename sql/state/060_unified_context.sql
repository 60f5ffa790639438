-- One row per user with at least one event: profile, stats and recent story joined, plus
-- `context`, the one jsonb document the agent reads.
-- Phone and email stay columns for the tools; the context only says whether a channel is
-- reachable, so the model never sees (or chooses) an address. Free text from events sits
-- in recent_events and is fenced as untrusted when the prompt is built. mca's own touches
-- (last_contacted_at, contacts_7d, offers_outstanding) are columns after `context` and
-- stats inside it.
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
