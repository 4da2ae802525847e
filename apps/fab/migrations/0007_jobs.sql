-- Each tool's job queue (scanner jobs, reticle check-in/out): a JSON document of the domain's
-- `JobQueue`, updated only at the version the writer read (optimistic concurrency), so replicas
-- serialise the changes to one tool's queue without locks.
CREATE TABLE tool_queues (
    tool TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    queue TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
