-- One row is how many messages one user was sent on one channel ('*' = any channel) in one
-- period of the user's own calendar: period 'day' (key 2026-11-23), 'week' (2026-W48) or
-- 'month' (2026-11). Incremented only by a conditional upsert (sent < cap).
CREATE TABLE contact_counters (
    user_id    varchar NOT NULL,
    channel    varchar NOT NULL,
    period     varchar NOT NULL,
    period_key varchar NOT NULL,
    sent       integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, channel, period, period_key)
);
