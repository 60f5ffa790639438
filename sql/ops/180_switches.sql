-- One row is one operator switch as last set: `kill` (every side-effecting tool is denied and
-- nothing is dispatched) or `shadow` (decide and record, dispatch nothing), who set it, when
-- and why. The guard and the dispatcher read this table on every call and every claim, so a
-- flip takes effect in every process at once; a switch without a row follows the policy file.
-- Every flip is also an audit_log row (tool `switch:<name>`).
CREATE TABLE switches (
    name    varchar PRIMARY KEY CHECK (name IN ('kill', 'shadow')),
    enabled boolean NOT NULL,
    set_by  varchar NOT NULL,
    reason  varchar NOT NULL,
    set_at  timestamptz NOT NULL
);
