-- FDC: every sample batch as received, keyed by its id (the broker's message id, or
-- `http:<principal>:<idempotency key>` for a batch posted over HTTP), written in the same
-- transaction as the monitor it moved and the alarms it raised. A batch delivered again is not
-- evaluated again: its `deliveries` count goes up instead, so a duplicate delivery is visible
-- (the queue drill reads it) without a second effect.
CREATE TABLE fdc_batches (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    parameter TEXT NOT NULL,
    samples TEXT NOT NULL,
    sample_count BIGINT NOT NULL,
    alarms BIGINT NOT NULL,
    deliveries BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX fdc_batches_tool ON fdc_batches (tool, parameter);
