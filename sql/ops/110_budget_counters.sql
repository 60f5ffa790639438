-- One row is one budget in one period (scope `global:day` on 2026-11-23, `user:u1:month` in
-- 2026-11, `asset:A1:redemptions` for all time): its limit under the policy in force and how
-- much of it allowed calls have reserved. Updated only by a conditional upsert
-- (spent + amount <= limit), so concurrent callers can never push spent past the limit.
CREATE TABLE budget_counters (
    scope        varchar NOT NULL,
    period_key   varchar NOT NULL,
    limit_amount numeric NOT NULL,
    spent        numeric NOT NULL CHECK (spent >= 0),
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, period_key)
);
