-- The central spec registry: one aggregate (sets, their change log, the fabs'
-- acknowledgements), small and rarely written. Its snapshot is updated only at the version the
-- writer read (optimistic concurrency); every change is also appended to spec_log with who made
-- it, so the history survives whatever the snapshot holds.
CREATE TABLE spec_registry (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE spec_log (
    revision BIGINT PRIMARY KEY,
    change TEXT NOT NULL,
    principal TEXT NOT NULL,
    at BIGINT NOT NULL
);

CREATE TABLE spec_acks (
    fab TEXT NOT NULL,
    version BIGINT NOT NULL,
    principal TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (fab, version)
);
