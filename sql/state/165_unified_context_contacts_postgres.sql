-- No rows: unified_context_recomputed, the portable twin of unified_context on PostgreSQL,
-- re-created from file 164's definition over the *_recomputed views.
-- engine: postgres
-- Taken from the catalogue rather than copied, as in file 103 (the other way round), so the
-- two cannot drift apart. user_contacts and user_contacts_7d have no twin: they are computed
-- at read time on PostgreSQL already.
DO $repoint$
DECLARE
    definition text := pg_get_viewdef('unified_context'::regclass);
BEGIN
    definition := replace(definition, 'user_stats ', 'user_stats_recomputed ');
    definition := replace(definition, 'user_profile ', 'user_profile_recomputed ');
    definition := replace(definition, 'event_chronology ', 'event_chronology_recomputed ');
    EXECUTE 'CREATE OR REPLACE VIEW unified_context_recomputed AS ' || definition;
END
$repoint$;
