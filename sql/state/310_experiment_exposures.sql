-- One row per customer, trigger and experiment: the customer's group, first exposure (the
-- first decision recorded for them, `decision_recorded`, whether anything was then sent,
-- withheld or nothing at all), and what they did in the window after it.
-- This is the intent-to-treat unit of `mca report uplift`: conversions here are every
-- purchase/order_completed of the customer in [first_exposed_at, window_ends_at), not only
-- those credited to an action, so holdout, control and treatment are measured alike. The
-- group, brain and segment are those of the first exposure (fixed before any outcome).
-- cost is action_outcomes' (a coupon's value only once redeemed, points and messages when sent).
CREATE MATERIALIZED VIEW experiment_exposure_starts AS
SELECT
    experiment_id, trigger_name, user_id, experiment_group, brain, segment,
    decided_at AS first_exposed_at, window_ends_at
FROM (
    SELECT
        coalesce(properties ->> 'experiment_id', 'none') AS experiment_id,
        properties ->> 'trigger' AS trigger_name,
        user_id,
        coalesce(properties ->> 'experiment_group', 'treatment') AS experiment_group,
        properties ->> 'brain' AS brain,
        properties ->> 'segment' AS segment,
        ts AS decided_at,
        ts + coalesce(CAST(properties ->> 'window_s' AS bigint), 604800) * INTERVAL '1 second'
            AS window_ends_at,
        row_number() OVER (
            PARTITION BY coalesce(properties ->> 'experiment_id', 'none'), properties ->> 'trigger', user_id
            ORDER BY ts, event_id
        ) AS nth
    FROM events
    WHERE event_type = 'decision_recorded'
) AS ranked
WHERE nth = 1;

CREATE MATERIALIZED VIEW experiment_outcomes AS
SELECT
    s.experiment_id, s.trigger_name, s.user_id, s.experiment_group, s.brain, s.segment,
    s.first_exposed_at, s.window_ends_at,
    coalesce(c.actions_sent, 0) AS actions_sent,
    coalesce(c.cost, 0) AS cost,
    coalesce(o.conversions, 0) > 0 AS converted,
    coalesce(o.revenue, 0) AS revenue
FROM experiment_exposure_starts AS s
LEFT JOIN (
    SELECT experiment_id, trigger_name, user_id,
           count(*) FILTER (WHERE sent) AS actions_sent, sum(cost) AS cost
    FROM action_outcomes
    GROUP BY experiment_id, trigger_name, user_id
) AS c ON c.experiment_id = s.experiment_id AND c.trigger_name = s.trigger_name AND c.user_id = s.user_id
LEFT JOIN (
    SELECT s2.experiment_id, s2.trigger_name, s2.user_id, count(*) AS conversions,
           sum(coalesce(e.value, 0)) AS revenue
    FROM experiment_exposure_starts AS s2
    JOIN events AS e
        ON e.user_id = s2.user_id AND e.ts >= s2.first_exposed_at AND e.ts < s2.window_ends_at
    WHERE e.event_type IN ('purchase', 'order_completed')
    GROUP BY s2.experiment_id, s2.trigger_name, s2.user_id
) AS o ON o.experiment_id = s.experiment_id AND o.trigger_name = s.trigger_name AND o.user_id = s.user_id;

CREATE MATERIALIZED VIEW experiment_exposures AS
SELECT *, true AS pending FROM experiment_outcomes WHERE window_ends_at > now()
UNION ALL
SELECT *, false AS pending FROM experiment_outcomes WHERE window_ends_at <= now();
