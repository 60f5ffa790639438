-- One row is the last time an allowed message went to one user on one channel ('*' = any
-- channel): the minimum-gap check moves it forward only when the gap has passed.
CREATE TABLE contact_last (
    user_id varchar NOT NULL,
    channel varchar NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, channel)
);
