-- One row is one user whose birthday is today in their own time zone (UTC when unknown).
-- The dedup key names the year, so a birthday makes one job a year whenever the query runs.
-- %(zones)s lists the time zones the state store knows (lower case, bound by the trigger
-- service): a zone it does not know ('Mars/Olympus_Mons') falls back to UTC for that user
-- instead of failing the query, and so everyone's birthday, with an error.
SELECT
    p.user_id,
    'birthday:' || p.user_id || ':' || to_char(local_now.ts, 'YYYY') AS dedup_key,
    jsonb_build_object('birthday', p.birthday, 'timezone', zone.name) AS facts
FROM user_profile AS p
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN lower(p.timezone) = ANY(CAST(%(zones)s AS text[])) THEN p.timezone
        ELSE 'UTC'
    END AS name
) AS zone
CROSS JOIN LATERAL (
    SELECT CAST(%(now)s AS timestamptz) AT TIME ZONE zone.name AS ts
) AS local_now
WHERE p.birthday IS NOT NULL
  AND coalesce(p.do_not_contact, false) = false
  AND to_char(p.birthday, 'MM-DD') = to_char(local_now.ts, 'MM-DD');
