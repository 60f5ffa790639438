-- No rows: the index that keeps one user's contact stats a bounded read on PostgreSQL.
-- engine: postgres
-- user_contacts is a plain view here, computed at read time; this partial index holds only
-- mca's contact events and coupon redemptions, so reading one user costs their few touches,
-- not their whole history.
CREATE INDEX events_user_contacts ON events (user_id, ts)
    WHERE event_type IN ('offer_sent', 'message_sent', 'points_awarded', 'coupon_applied');
