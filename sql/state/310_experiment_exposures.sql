-- One row per customer, trigger and experiment: the customer's group, first exposure (the
-- first action taken or withheld), and what they did in the window after it, sent or not.
-- This is the intent-to-treat unit of `mca report uplift`: conversions here are every
-- purchase/order_completed of the customer in [first_exposed_at, window_ends_at), not only
-- those credited to an action, so holdout, control and treatment are measured alike. The
-- group, brain and segment are those of the first exposure (fixed before any outcome).
CREATE MATERIALIZED VIEW experiment_exposure_starts AS
SELECT
    experiment_id, trigger_name, user_id, experiment_group, brain, segment,
    acted_at AS first_exposed_at, window_ends_at
FROM (
    SELECT
        experiment_id, trigger_name, user_id, experiment_group, brain, segment, acted_at,
        window_ends_at,
        row_number() OVER (
            PARTITION BY experiment_id, trigger_name, user_id ORDER BY acted_at, action_id
        ) AS nth
    FROM actions
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
    FROM actions
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
