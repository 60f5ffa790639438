-- One row is one user who must not be contacted on one channel: STOP received, number known
-- invalid, unsubscribed at the provider. The guard denies such contacts with reason `suppressed`.
CREATE TABLE suppressions (
    user_id    varchar NOT NULL,
    channel    varchar NOT NULL,
    reason     varchar NOT NULL,
    source     varchar NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, channel)
);
