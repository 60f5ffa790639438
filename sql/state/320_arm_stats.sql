-- One row per goal, segment and arm (asset:channel) mca has sent: exposures, matured exposures
-- (attribution window closed), their conversions and revenue, and the cost; what the learning
-- reads (learn/arms.py) to form each arm's posterior.
-- Only matured exposures say anything about an arm: an open window is pending, never a failure.
CREATE MATERIALIZED VIEW arm_stats AS
SELECT
    goal,
    coalesce(segment, 'all') AS segment,
    coalesce(asset, action_type) || ':' || coalesce(channel, '') AS arm,
    count(*) AS exposures,
    count(*) FILTER (WHERE NOT pending) AS matured,
    count(*) FILTER (WHERE NOT pending AND converted) AS conversions,
    coalesce(sum(revenue) FILTER (WHERE NOT pending), 0) AS revenue,
    coalesce(sum(cost), 0) AS cost
FROM action_attribution
WHERE sent
GROUP BY goal, coalesce(segment, 'all'), coalesce(asset, action_type) || ':' || coalesce(channel, '');
