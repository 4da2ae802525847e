-- Pruning deletes the stored replies older than the retention (FAB_IDEMPOTENCY_RETENTION):
-- by creation time, without reading the whole table.
CREATE INDEX idempotency_created_at ON idempotency (created_at);
