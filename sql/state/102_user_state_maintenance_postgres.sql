-- No rows: the triggers that keep user_stats_live, user_profile_live and
-- user_activity_hourly_live equal to what the portable views (user_stats_recomputed,
-- user_profile_recomputed, user_activity_7d) compute from scratch.
-- engine: postgres
-- Statement-level AFTER triggers with transition tables see exactly the rows a statement
-- stored, whoever wrote it (the ingest gateway, mca sink, mca seed's COPY, psql); an
-- INSERT ... ON CONFLICT DO NOTHING puts only the new rows there, so a redelivered event
-- never counts twice. Each statement folds its rows per user into one upsert, in user_id
-- order: the row lock of ON CONFLICT DO UPDATE serializes two transactions writing the same
-- user (the second re-reads the committed row, so no update is lost), and the common order
-- keeps two such transactions from deadlocking. UPDATE and DELETE of events, rare repairs,
-- recompute the users they touch from their events; TRUNCATE empties the state.
-- The merge statements are built as text because a transition table is visible only to the
-- SQL its own trigger function runs, and the same statements also rebuild state from events.

-- Whether a latest-by-time candidate (ts, event_id) replaces the current one.
CREATE FUNCTION user_state_is_later(
    candidate_ts timestamptz, candidate_id text, current_ts timestamptz, current_id text
) RETURNS boolean
LANGUAGE sql IMMUTABLE
RETURN candidate_ts IS NOT NULL
    AND (current_ts IS NULL OR (candidate_ts, candidate_id) > (current_ts, current_id));

-- The upsert that folds the events of `source` (a FROM item) into user_stats_live. Latest
-- values come from DISTINCT ON rather than array_agg(... ORDER BY): per-group arrays cost
-- more than the rest of the statement together.
CREATE FUNCTION user_stats_merge_sql(source text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format($merge$
WITH batch AS (
    SELECT
        user_id,
        min(ts) AS first_seen,
        max(ts) AS last_seen,
        count(*) AS events_total,
        count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
        coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0) AS lifetime_value,
        coalesce(sum(points) FILTER (
            WHERE event_type NOT IN ('points_redeemed', 'points_expired')), 0) AS points_earned,
        coalesce(sum(points) FILTER (
            WHERE event_type IN ('points_redeemed', 'points_expired')), 0) AS points_spent,
        count(*) FILTER (WHERE event_type = 'ticket_opened') AS tickets_opened,
        count(*) FILTER (WHERE event_type = 'ticket_closed') AS tickets_closed
    FROM %1$s
    GROUP BY user_id
), last_purchase AS (
    SELECT DISTINCT ON (user_id) user_id, ts, event_id, sku, category
    FROM %1$s
    WHERE event_type = 'purchase'
    ORDER BY user_id, ts DESC, event_id DESC
), last_churn AS (
    SELECT DISTINCT ON (user_id)
        user_id, ts, event_id, CAST(properties ->> 'score' AS double precision) AS score
    FROM %1$s
    WHERE event_type = 'churn_scored'
    ORDER BY user_id, ts DESC, event_id DESC
)
INSERT INTO user_stats_live AS cur (
    user_id, first_seen, last_seen, events_total, purchases, lifetime_value, points_earned,
    points_spent, last_purchase_at, last_purchase_event_id, last_purchase_sku,
    last_purchase_category, churn_scored_at, churn_event_id, churn_score, tickets_opened,
    tickets_closed)
SELECT
    b.user_id, b.first_seen, b.last_seen, b.events_total, b.purchases, b.lifetime_value,
    b.points_earned, b.points_spent, p.ts, p.event_id, p.sku, p.category, c.ts, c.event_id,
    c.score, b.tickets_opened, b.tickets_closed
FROM batch AS b
LEFT JOIN last_purchase AS p ON p.user_id = b.user_id
LEFT JOIN last_churn AS c ON c.user_id = b.user_id
ORDER BY b.user_id
ON CONFLICT (user_id) DO UPDATE SET
    first_seen = least(cur.first_seen, excluded.first_seen),
    last_seen = greatest(cur.last_seen, excluded.last_seen),
    events_total = cur.events_total + excluded.events_total,
    purchases = cur.purchases + excluded.purchases,
    lifetime_value = cur.lifetime_value + excluded.lifetime_value,
    points_earned = cur.points_earned + excluded.points_earned,
    points_spent = cur.points_spent + excluded.points_spent,
    last_purchase_at = greatest(cur.last_purchase_at, excluded.last_purchase_at),
    last_purchase_event_id = CASE WHEN user_state_is_later(excluded.last_purchase_at,
        excluded.last_purchase_event_id, cur.last_purchase_at, cur.last_purchase_event_id)
        THEN excluded.last_purchase_event_id ELSE cur.last_purchase_event_id END,
    last_purchase_sku = CASE WHEN user_state_is_later(excluded.last_purchase_at,
        excluded.last_purchase_event_id, cur.last_purchase_at, cur.last_purchase_event_id)
        THEN excluded.last_purchase_sku ELSE cur.last_purchase_sku END,
    last_purchase_category = CASE WHEN user_state_is_later(excluded.last_purchase_at,
        excluded.last_purchase_event_id, cur.last_purchase_at, cur.last_purchase_event_id)
        THEN excluded.last_purchase_category ELSE cur.last_purchase_category END,
    churn_scored_at = greatest(cur.churn_scored_at, excluded.churn_scored_at),
    churn_event_id = CASE WHEN user_state_is_later(excluded.churn_scored_at,
        excluded.churn_event_id, cur.churn_scored_at, cur.churn_event_id)
        THEN excluded.churn_event_id ELSE cur.churn_event_id END,
    churn_score = CASE WHEN user_state_is_later(excluded.churn_scored_at,
        excluded.churn_event_id, cur.churn_scored_at, cur.churn_event_id)
        THEN excluded.churn_score ELSE cur.churn_score END,
    tickets_opened = cur.tickets_opened + excluded.tickets_opened,
    tickets_closed = cur.tickets_closed + excluded.tickets_closed
$merge$, source);

-- The upsert that folds the sessions and purchases of `source` into their hours.
CREATE FUNCTION user_activity_merge_sql(source text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format($merge$
INSERT INTO user_activity_hourly_live AS cur (user_id, hour, sessions, purchases, spend)
SELECT
    user_id,
    date_trunc('hour', ts),
    count(*) FILTER (WHERE event_type = 'session_start'),
    count(*) FILTER (WHERE event_type = 'purchase'),
    coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0)
FROM %s
WHERE event_type IN ('session_start', 'purchase')
GROUP BY 1, 2
ORDER BY 1, 2
ON CONFLICT (user_id, hour) DO UPDATE SET
    sessions = cur.sessions + excluded.sessions,
    purchases = cur.purchases + excluded.purchases,
    spend = cur.spend + excluded.spend
$merge$, source);

-- The upsert that folds the identify events of `source` into user_profile_live: per trait,
-- the value of the latest event that carries it (latest wins per trait, not per event).
CREATE FUNCTION user_profile_merge_sql(source text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    traits CONSTANT text[][] := ARRAY[
        ['first_name', 'text'], ['phone', 'text'], ['email', 'text'], ['timezone', 'text'],
        ['tier', 'text'], ['consent_sms', 'boolean'], ['consent_email', 'boolean'],
        ['consent_push', 'boolean'], ['do_not_contact', 'boolean'], ['birthday', 'date']];
    columns text := 'user_id, profile_updated_at';
    aggregates text := 'user_id, max(ts)';
    updates text := 'profile_updated_at = greatest(cur.profile_updated_at, excluded.profile_updated_at)';
    t text;
    present text;
    later text;
BEGIN
    FOR i IN 1 .. array_length(traits, 1) LOOP
        t := traits[i][1];
        present := format('FILTER (WHERE properties ->> %L IS NOT NULL)', t);
        later := format('user_state_is_later(excluded.%1$I, excluded.%2$I, cur.%1$I, cur.%2$I)',
                        t || '_ts', t || '_event_id');
        columns := columns || format(', %I, %I, %I', t, t || '_ts', t || '_event_id');
        aggregates := aggregates || format(
            ', (array_agg(CAST(properties ->> %1$L AS %2$s) ORDER BY ts DESC, event_id DESC) %3$s)[1]'
            ', max(ts) %3$s, (array_agg(event_id ORDER BY ts DESC, event_id DESC) %3$s)[1]',
            t, traits[i][2], present);
        updates := updates || format(
            ', %1$I = CASE WHEN %4$s THEN excluded.%1$I ELSE cur.%1$I END'
            ', %2$I = greatest(cur.%2$I, excluded.%2$I)'
            ', %3$I = CASE WHEN %4$s THEN excluded.%3$I ELSE cur.%3$I END',
            t, t || '_ts', t || '_event_id', later);
    END LOOP;
    RETURN format(
        'INSERT INTO user_profile_live AS cur (%s) SELECT %s FROM %s WHERE event_type = ''identify'' '
        'GROUP BY user_id ORDER BY user_id ON CONFLICT (user_id) DO UPDATE SET %s',
        columns, aggregates, source, updates);
END
$fn$;

-- Recompute the users whose ids `affected` (a FROM item with a user_id column) lists, from
-- their events: the repair path for UPDATE and DELETE, and the initial build.
CREATE FUNCTION user_state_rebuild_sql(affected text) RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY[
    format('DELETE FROM user_stats_live WHERE user_id IN (SELECT user_id FROM %s)', affected),
    format('DELETE FROM user_profile_live WHERE user_id IN (SELECT user_id FROM %s)', affected),
    format('DELETE FROM user_activity_hourly_live WHERE user_id IN (SELECT user_id FROM %s)', affected),
    user_stats_merge_sql(format(
        '(SELECT * FROM events WHERE user_id IN (SELECT user_id FROM %s)) AS affected_events', affected)),
    user_profile_merge_sql(format(
        '(SELECT * FROM events WHERE user_id IN (SELECT user_id FROM %s)) AS affected_events', affected)),
    user_activity_merge_sql(format(
        '(SELECT * FROM events WHERE user_id IN (SELECT user_id FROM %s)) AS affected_events', affected))];

CREATE FUNCTION user_state_absorb_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    EXECUTE user_stats_merge_sql('new_events');
    EXECUTE user_profile_merge_sql('new_events');
    EXECUTE user_activity_merge_sql('new_events');
    RETURN NULL;
END
$fn$;

CREATE FUNCTION user_state_recompute_changed() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
    affected text;
    statement text;
BEGIN
    affected := CASE TG_OP
        WHEN 'UPDATE' THEN '(SELECT user_id FROM old_events UNION SELECT user_id FROM new_events) AS a'
        ELSE '(SELECT user_id FROM old_events) AS a' END;
    FOREACH statement IN ARRAY user_state_rebuild_sql(affected) LOOP
        EXECUTE statement;
    END LOOP;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION user_state_clear() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    TRUNCATE user_stats_live, user_profile_live, user_activity_hourly_live;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER events_user_state_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION user_state_absorb_inserted();
CREATE TRIGGER events_user_state_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION user_state_recompute_changed();
CREATE TRIGGER events_user_state_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION user_state_recompute_changed();
CREATE TRIGGER events_user_state_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION user_state_clear();

-- Events stored before this file was applied.
DO $build$
BEGIN
    EXECUTE user_stats_merge_sql('events');
    EXECUTE user_profile_merge_sql('events');
    EXECUTE user_activity_merge_sql('events');
END
$build$;
