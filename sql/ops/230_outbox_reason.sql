-- Why a row ended without a delivery when the dispatcher judged it again at delivery time:
-- `expired` (older than the dispatcher's maximum age) or `cancelled` (the guard would refuse it
-- now: consent withdrawn, suppressed, a policy that no longer allows it), with the guard's reason
-- code here (its message stays in last_error). Also set while a row waits on quiet hours.
ALTER TABLE outbox ADD COLUMN reason varchar;
