-- One row is one user whose birthday is today in their own time zone (UTC when unknown).
-- The dedup key names the year, so a birthday makes one job a year whenever the query runs.
SELECT
    p.user_id,
    'birthday:' || p.user_id || ':' || to_char(local_now.ts, 'YYYY') AS dedup_key,
    jsonb_build_object('birthday', p.birthday, 'timezone', coalesce(p.timezone, 'UTC')) AS facts
FROM user_profile AS p
CROSS JOIN LATERAL (
    SELECT CAST(%(now)s AS timestamptz) AT TIME ZONE coalesce(p.timezone, 'UTC') AS ts
) AS local_now
WHERE p.birthday IS NOT NULL
  AND coalesce(p.do_not_contact, false) = false
  AND to_char(p.birthday, 'MM-DD') = to_char(local_now.ts, 'MM-DD');
