-- One row is one user whose latest cart add is older than the abandonment window (and not
-- older than a day) with no purchase since: an abandoned cart worth one nudge.
-- %(now)s is the trigger service's clock (injected in tests); the dedup key names the cart
-- event, so the same abandoned cart makes one job however often the query runs.
SELECT
    c.user_id,
    'cart_abandoned:' || c.user_id || ':' || c.event_id AS dedup_key,
    jsonb_build_object(
        'cart_event_id', c.event_id,
        'sku', c.sku,
        'category', c.category,
        'value', c.value,
        'added_at', c.ts
    ) AS facts
FROM (
    SELECT
        user_id, event_id, sku, category, value, ts,
        row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, event_id DESC) AS recency
    FROM events
    WHERE event_type = 'cart_add'
      AND ts > CAST(%(now)s AS timestamptz) - INTERVAL '1 day'
      -- A cart from a backfill (marked at /ingest) is history, never a trigger.
      AND coalesce(properties ->> '_backfill', '') <> 'true'
) AS c
WHERE c.recency = 1
  AND c.ts <= CAST(%(now)s AS timestamptz) - INTERVAL '30 minutes'
  AND NOT EXISTS (
      SELECT 1 FROM events AS p
      WHERE p.user_id = c.user_id
        AND p.event_type = 'purchase'
        AND p.ts >= c.ts
        AND p.ts <= CAST(%(now)s AS timestamptz)
  );
