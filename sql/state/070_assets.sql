-- One row is one catalogue item the agent may offer: a coupon, a reward or a piece of content.
-- value is what the item is worth to the customer (a coupon's face value, a reward's cost);
-- the tools read it from here, never from the caller. embedding is all-MiniLM-L6-v2 of
-- title + description + tags (384 dimensions, cosine distance).
CREATE TABLE assets (
    asset_id    varchar PRIMARY KEY,
    kind        varchar NOT NULL,
    title       varchar NOT NULL,
    description varchar NOT NULL,
    value       numeric,
    currency    varchar,
    category    varchar,
    tags        varchar[],
    active      boolean NOT NULL,
    valid_from  timestamptz,
    valid_until timestamptz,
    embedding   vector(384),
    updated_at  timestamptz
);
