-- One row per user with at least one event: lifetime counters, points balance, the latest
-- purchase and churn score, open tickets, the 7-day window, and mca's own touches (file 160):
-- when mca last contacted them, contacts in the last 7 days, offers sent and not yet redeemed.
-- Points: every event's points are earned, except points_redeemed and points_expired,
-- whose (positive) points are spent. Open tickets never go below zero.
CREATE MATERIALIZED VIEW user_stats AS
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
FROM (
    SELECT
        user_id,
        min(ts) AS first_seen,
        max(ts) AS last_seen,
        count(*) AS events_total,
        count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
        coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0) AS lifetime_value,
        coalesce(sum(points) FILTER (
            WHERE event_type NOT IN ('points_redeemed', 'points_expired')), 0) AS points_earned,
        coalesce(sum(points) FILTER (
            WHERE event_type IN ('points_redeemed', 'points_expired')), 0) AS points_spent,
        max(ts) FILTER (WHERE event_type = 'purchase') AS last_purchase_at,
        (array_agg(sku ORDER BY ts DESC) FILTER (WHERE event_type = 'purchase'))[1] AS last_purchase_sku,
        (array_agg(category ORDER BY ts DESC)
            FILTER (WHERE event_type = 'purchase'))[1] AS last_purchase_category,
        (array_agg(CAST(properties ->> 'score' AS double precision) ORDER BY ts DESC)
            FILTER (WHERE event_type = 'churn_scored'))[1] AS churn_score,
        max(ts) FILTER (WHERE event_type = 'churn_scored') AS churn_scored_at,
        count(*) FILTER (WHERE event_type = 'ticket_opened') AS tickets_opened,
        count(*) FILTER (WHERE event_type = 'ticket_closed') AS tickets_closed
    FROM events
    GROUP BY user_id
) AS life
LEFT JOIN user_activity_7d AS recent ON recent.user_id = life.user_id
LEFT JOIN user_contacts AS contacts ON contacts.user_id = life.user_id
LEFT JOIN user_contacts_7d AS contacts_7d ON contacts_7d.user_id = life.user_id;
