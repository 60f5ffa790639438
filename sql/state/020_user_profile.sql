-- One row per user who sent at least one identify event: the latest value of each trait.
-- Latest wins per trait, not per event: an identify carrying only an email keeps the phone
-- from an earlier one.
CREATE MATERIALIZED VIEW user_profile AS
SELECT
    user_id,
    (array_agg(properties ->> 'first_name' ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'first_name' IS NOT NULL))[1] AS first_name,
    (array_agg(properties ->> 'phone' ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'phone' IS NOT NULL))[1] AS phone,
    (array_agg(properties ->> 'email' ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'email' IS NOT NULL))[1] AS email,
    (array_agg(properties ->> 'timezone' ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'timezone' IS NOT NULL))[1] AS timezone,
    (array_agg(properties ->> 'tier' ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'tier' IS NOT NULL))[1] AS tier,
    (array_agg(CAST(properties ->> 'consent_sms' AS boolean) ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'consent_sms' IS NOT NULL))[1] AS consent_sms,
    (array_agg(CAST(properties ->> 'consent_email' AS boolean) ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'consent_email' IS NOT NULL))[1] AS consent_email,
    (array_agg(CAST(properties ->> 'consent_push' AS boolean) ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'consent_push' IS NOT NULL))[1] AS consent_push,
    (array_agg(CAST(properties ->> 'do_not_contact' AS boolean) ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'do_not_contact' IS NOT NULL))[1] AS do_not_contact,
    (array_agg(CAST(properties ->> 'birthday' AS date) ORDER BY ts DESC)
        FILTER (WHERE properties ->> 'birthday' IS NOT NULL))[1] AS birthday,
    max(ts) AS profile_updated_at
FROM events
WHERE event_type = 'identify'
GROUP BY user_id;
