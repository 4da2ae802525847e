CREATE TABLE IF NOT EXISTS lots (
    id text PRIMARY KEY,
    product text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
