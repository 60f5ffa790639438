-- One row per action mca sent, named by its arm (asset:channel), with when its attribution window
-- opened and closes and when it first converted: what the allocator's arm cache (learn/evidence.py)
-- reads to weigh evidence as of the product's clock, a bound parameter, rather than the engine's
-- now(). The two differ in a simulation stepped on its own clock, and `arm_stats` (320), judged by
-- now(), would count an exposure whose outcomes the simulated customers have not yet had time to
-- send as a matured failure.
CREATE MATERIALIZED VIEW arm_exposures AS
SELECT
    goal,
    coalesce(segment, 'all') AS segment,
    coalesce(asset, action_type) || ':' || coalesce(channel, '') AS arm,
    acted_at,
    window_ends_at,
    first_converted_at,
    revenue,
    cost
FROM action_outcomes
WHERE sent;
