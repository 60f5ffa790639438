-- One row per user with at least one event (user_stats_live) or one identify event
-- (user_profile_live): the lifetime aggregates behind user_stats and user_profile, kept up
-- to date by the triggers on events (file 102) in the transaction that stores the events.
-- engine: postgres
-- Every column is a count, a sum, a min, a max, or a latest-by-time value. A latest value
-- keeps the (ts, event_id) of the event it came from, so an event arriving late replaces it
-- only when it is later; ties on ts go to the greater event_id. Pages are left 40% free so
-- that the update every event causes stays on its page (a HOT update, no index writes).
CREATE TABLE user_stats_live (
    user_id                text PRIMARY KEY,
    first_seen             timestamptz NOT NULL,
    last_seen              timestamptz NOT NULL,
    events_total           bigint NOT NULL,
    purchases              bigint NOT NULL,
    lifetime_value         numeric NOT NULL,
    points_earned          bigint NOT NULL,
    points_spent           bigint NOT NULL,
    last_purchase_at       timestamptz,
    last_purchase_event_id text,
    last_purchase_sku      text,
    last_purchase_category text,
    churn_scored_at        timestamptz,
    churn_event_id         text,
    churn_score            double precision,
    tickets_opened         bigint NOT NULL,
    tickets_closed         bigint NOT NULL
) WITH (fillfactor = 60);

CREATE TABLE user_profile_live (
    user_id                  text PRIMARY KEY,
    profile_updated_at       timestamptz NOT NULL,
    first_name               text,
    first_name_ts            timestamptz,
    first_name_event_id      text,
    phone                    text,
    phone_ts                 timestamptz,
    phone_event_id           text,
    email                    text,
    email_ts                 timestamptz,
    email_event_id           text,
    timezone                 text,
    timezone_ts              timestamptz,
    timezone_event_id        text,
    tier                     text,
    tier_ts                  timestamptz,
    tier_event_id            text,
    consent_sms              boolean,
    consent_sms_ts           timestamptz,
    consent_sms_event_id     text,
    consent_email            boolean,
    consent_email_ts         timestamptz,
    consent_email_event_id   text,
    consent_push             boolean,
    consent_push_ts          timestamptz,
    consent_push_event_id    text,
    do_not_contact           boolean,
    do_not_contact_ts        timestamptz,
    do_not_contact_event_id  text,
    birthday                 date,
    birthday_ts              timestamptz,
    birthday_event_id        text
) WITH (fillfactor = 60);

-- The analysts' population queries sort or filter on these; a plain index keeps
-- "top 10 by churn_score" from sorting every user.
CREATE INDEX user_stats_live_churn ON user_stats_live (churn_score DESC NULLS LAST);

-- One row per user and hour with a session or a purchase: what the 7-day window sums, so a
-- read adds at most 168 hours plus the events of the one hour the window's edge cuts.
CREATE TABLE user_activity_hourly_live (
    user_id   text NOT NULL,
    hour      timestamptz NOT NULL,
    sessions  bigint NOT NULL,
    purchases bigint NOT NULL,
    spend     numeric NOT NULL,
    PRIMARY KEY (user_id, hour)
) WITH (fillfactor = 60);
