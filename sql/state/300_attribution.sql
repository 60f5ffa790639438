-- One row per action mca took or withheld (actions), per decision its latest action
-- (decision_last_action), per conversion credited to one action
-- (conversion_credit), and per action with its outcomes (action_outcomes, then
-- action_attribution with `pending`); experiment_exposures has one row per customer, trigger
-- and experiment: the intent-to-treat unit of the uplift report.
--
-- The event contract these views read (all rows of `events`):
-- Actions, written by the dispatcher (sent) or the worker (withheld for holdout/control):
--   event_type  offer_sent | message_sent | points_awarded | crm_updated | action_withheld
--   properties  decision_id, trigger, goal, asset, channel, brain, policy_version,
--               experiment_id (the salt's id), experiment_group (holdout|control|treatment),
--               propensity (number|null), coupon_code, cost (number: the budget reserved), segment,
--               window_s (the goal's attribution window in seconds, default 604800 = 7 days)
-- Outcomes, from /ingest (Segment names mapped to snake_case by ingest/formats.py):
--   purchase | order_completed        value = revenue; properties.coupon_code (or .coupon)
--   coupon_applied                    properties.coupon_code (or .coupon)
--   email_opened | message_opened     properties.decision_id
--   email_link_clicked | link_clicked properties.decision_id
--   unsubscribed                      negative outcome, by user within the window
--   message_delivered | message_failed  provider receipts, properties.decision_id
-- A receipt or engagement event marks exactly one action: the one its `call_id` names (the
-- receipt doors, ingest/receipts.py, resolve it from the provider's message id, the coupon code
-- or the decision), else the latest action of the decision it names (decision_last_action).
--
-- Why the window rides on the action (window_s) rather than a table filled from the triggers
-- file: it is the window in force when the decision was made, so editing the file never
-- rewrites past results, and both engines read it with no table to keep in step.
-- Rules: a conversion (purchase, order_completed) inside [acted_at, acted_at + window) is
-- credited to exactly one action of that user: the one whose coupon code it carries, else
-- the latest action before it (last touch). RisingWave allows now() only as a temporal
-- filter, so `pending` (window still open) is a union of two filtered halves.
-- Cost is what an action actually cost, not what it reserved: a coupon costs its value
-- (`value` of offer_sent) only when it is redeemed inside the window; points their value and
-- a message its cost from the policy (both reserved when sent, as `cost`); a withheld action
-- nothing. `reserved_cost` keeps what the guard reserved.
CREATE MATERIALIZED VIEW actions AS
SELECT
    event_id AS action_id,
    user_id,
    event_type AS action_type,
    ts AS acted_at,
    event_type <> 'action_withheld' AS sent,
    properties ->> 'decision_id' AS decision_id,
    properties ->> 'trigger' AS trigger_name,
    properties ->> 'goal' AS goal,
    properties ->> 'asset' AS asset,
    properties ->> 'channel' AS channel,
    properties ->> 'brain' AS brain,
    properties ->> 'policy_version' AS policy_version,
    coalesce(properties ->> 'experiment_id', 'none') AS experiment_id,
    coalesce(properties ->> 'experiment_group', 'treatment') AS experiment_group,
    properties ->> 'segment' AS segment,
    CAST(properties ->> 'propensity' AS double precision) AS propensity,
    properties ->> 'coupon_code' AS coupon_code,
    properties ->> 'call_id' AS call_id,
    coalesce(CAST(properties ->> 'cost' AS numeric), 0) AS reserved_cost,
    coalesce(value, CAST(properties ->> 'cost' AS numeric), 0) AS coupon_value,
    ts + coalesce(CAST(properties ->> 'window_s' AS bigint), 604800) * INTERVAL '1 second'
        AS window_ends_at
FROM events
WHERE event_type IN ('offer_sent', 'message_sent', 'points_awarded', 'crm_updated', 'action_withheld');

CREATE MATERIALIZED VIEW conversion_credit AS
SELECT conversion_id, user_id, converted_at, revenue, action_id, by_coupon
FROM (
    SELECT
        c.event_id AS conversion_id,
        c.user_id,
        c.ts AS converted_at,
        coalesce(c.value, 0) AS revenue,
        a.action_id,
        coalesce(a.coupon_code = coalesce(c.properties ->> 'coupon_code', c.properties ->> 'coupon'), false)
            AS by_coupon,
        row_number() OVER (
            PARTITION BY c.event_id
            ORDER BY
                coalesce(a.coupon_code = coalesce(c.properties ->> 'coupon_code', c.properties ->> 'coupon'),
                         false) DESC,
                a.acted_at DESC,
                a.action_id DESC
        ) AS rank
    FROM events AS c
    JOIN actions AS a
        ON a.user_id = c.user_id AND c.ts >= a.acted_at AND c.ts < a.window_ends_at
    WHERE c.event_type IN ('purchase', 'order_completed')
) AS candidates
WHERE rank = 1;

CREATE MATERIALIZED VIEW decision_last_action AS
SELECT decision_id, action_id
FROM (
    SELECT decision_id, action_id,
           row_number() OVER (PARTITION BY decision_id ORDER BY acted_at DESC, action_id DESC) AS rank
    FROM actions
    WHERE decision_id IS NOT NULL
) AS ranked
WHERE rank = 1;

CREATE MATERIALIZED VIEW action_outcomes AS
SELECT
    a.action_id, a.user_id, a.action_type, a.acted_at, a.sent, a.decision_id, a.trigger_name,
    a.goal, a.asset, a.channel, a.brain, a.policy_version, a.experiment_id, a.experiment_group,
    a.segment, a.propensity, a.coupon_code, a.reserved_cost, a.window_ends_at,
    CASE
        WHEN NOT a.sent THEN 0
        WHEN a.action_type = 'offer_sent' THEN
            CASE WHEN coalesce(u.redeemed, false) THEN a.coupon_value ELSE 0 END
        ELSE a.reserved_cost
    END AS cost,
    a.sent AND (a.action_type IN ('points_awarded', 'crm_updated') OR coalesce(r.delivered, false))
        AS delivered,
    coalesce(r.failed, false) AS failed,
    coalesce(r.opened, false) AS opened,
    coalesce(r.clicked, false) AS clicked,
    coalesce(u.redeemed, false) AS redeemed,
    coalesce(u.unsubscribed, false) AS unsubscribed,
    coalesce(k.conversions, 0) > 0 AS converted,
    coalesce(k.conversions, 0) AS conversions,
    k.first_converted_at,
    coalesce(k.revenue, 0) AS revenue
FROM actions AS a
LEFT JOIN (
    SELECT
        m.action_id,
        count(*) FILTER (WHERE m.event_type = 'message_delivered') > 0 AS delivered,
        count(*) FILTER (WHERE m.event_type = 'message_failed') > 0 AS failed,
        count(*) FILTER (WHERE m.event_type IN ('email_opened', 'message_opened')) > 0 AS opened,
        count(*) FILTER (WHERE m.event_type IN ('email_link_clicked', 'link_clicked')) > 0 AS clicked
    FROM (
        SELECT coalesce(by_call.action_id, by_decision.action_id) AS action_id, e.event_type
        FROM events AS e
        LEFT JOIN actions AS by_call ON by_call.call_id = e.properties ->> 'call_id'
        LEFT JOIN decision_last_action AS by_decision
            ON by_decision.decision_id
               = CASE WHEN e.properties ->> 'call_id' IS NULL THEN e.properties ->> 'decision_id' END
        WHERE e.event_type IN ('message_delivered', 'message_failed', 'email_opened', 'message_opened',
                               'email_link_clicked', 'link_clicked')
    ) AS m
    WHERE m.action_id IS NOT NULL
    GROUP BY m.action_id
) AS r ON r.action_id = a.action_id
LEFT JOIN (
    SELECT
        a2.action_id,
        count(*) FILTER (WHERE e.event_type = 'unsubscribed') > 0 AS unsubscribed,
        count(*) FILTER (WHERE e.event_type <> 'unsubscribed'
            AND a2.coupon_code = coalesce(e.properties ->> 'coupon_code', e.properties ->> 'coupon')) > 0
            AS redeemed
    FROM actions AS a2
    JOIN events AS e
        ON e.user_id = a2.user_id AND e.ts >= a2.acted_at AND e.ts < a2.window_ends_at
    WHERE e.event_type IN ('unsubscribed', 'coupon_applied', 'purchase', 'order_completed')
    GROUP BY a2.action_id
) AS u ON u.action_id = a.action_id
LEFT JOIN (
    SELECT action_id, count(*) AS conversions, min(converted_at) AS first_converted_at,
           sum(revenue) AS revenue
    FROM conversion_credit
    GROUP BY action_id
) AS k ON k.action_id = a.action_id;

CREATE MATERIALIZED VIEW action_attribution AS
SELECT *, true AS pending FROM action_outcomes WHERE window_ends_at > now()
UNION ALL
SELECT *, false AS pending FROM action_outcomes WHERE window_ends_at <= now();
