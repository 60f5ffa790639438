-- One row per user mca has reached or whose mca coupon came back: when mca last contacted
-- them, how many offers it sent, how many of its coupon codes were applied; and, in
-- user_contacts_7d, one row per user contacted in the last 7 days with how often.
-- mca's own actions are events in the same stream (offer_sent, message_sent,
-- points_awarded, crm_updated, action_withheld). A contact is an action the customer sees:
-- an offer, a message or an award; a CRM update or a withheld action is not. A redemption is
-- a coupon_applied event carrying a code mca issued (codes start with MCA-).
-- Kept apart from user_stats (which joins them, file 040) so that, on PostgreSQL, a
-- read of one user touches only that user's few action events (partial index, file 161).
CREATE MATERIALIZED VIEW user_contacts AS
SELECT
    user_id,
    max(ts) FILTER (
        WHERE event_type IN ('offer_sent', 'message_sent', 'points_awarded')) AS last_contacted_at,
    count(*) FILTER (WHERE event_type = 'offer_sent') AS offers_sent,
    count(*) FILTER (WHERE event_type = 'coupon_applied') AS offers_redeemed
FROM events
WHERE event_type IN ('offer_sent', 'message_sent', 'points_awarded')
    OR (event_type = 'coupon_applied' AND properties ->> 'coupon_code' LIKE 'MCA-%')
GROUP BY user_id;

CREATE MATERIALIZED VIEW user_contacts_7d AS
SELECT user_id, count(*) AS contacts_7d
FROM events
WHERE event_type IN ('offer_sent', 'message_sent', 'points_awarded')
    AND ts > now() - INTERVAL '7 days'
GROUP BY user_id;
