-- One row per user: their last 20 events, newest first, as a jsonb array.
-- Top-N per group is row_number() in a subquery, the form both engines maintain
-- incrementally (RisingWave) or push the user filter into (PostgreSQL). Contact addresses
-- are dropped from each event's properties: the agent reads this array, and the model must
-- never see (or choose) where a message goes.
CREATE MATERIALIZED VIEW event_chronology AS
SELECT
    user_id,
    jsonb_agg(
        jsonb_build_object(
            'event_id', event_id,
            'type', event_type,
            'ts', ts,
            'source', source,
            'value', value,
            'points', points,
            'sku', sku,
            'category', category,
            'text', text,
            'properties', properties - 'phone' - 'email'
        ) ORDER BY ts DESC, event_id DESC
    ) AS events,
    count(*) AS events_kept
FROM (
    SELECT
        event_id, user_id, event_type, ts, source, value, points, sku, category, text, properties,
        row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, event_id DESC) AS recency
    FROM events
) AS ranked
WHERE recency <= 20
GROUP BY user_id;
