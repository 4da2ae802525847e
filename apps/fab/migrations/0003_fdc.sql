-- FDC: each (tool, parameter) monitor's state, updated only at the version the writer read
-- (optimistic concurrency, so replicas can share tools), and the alarms with their
-- acknowledgement and the limits version they were raised under (inside the alarm document).
CREATE TABLE fdc_monitors (
    tool TEXT NOT NULL,
    parameter TEXT NOT NULL,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tool, parameter)
);

CREATE TABLE fdc_alarms (
    id BIGINT PRIMARY KEY,
    tool TEXT NOT NULL,
    parameter TEXT NOT NULL,
    alarm TEXT NOT NULL,
    inhibits BIGINT NOT NULL,
    acked BIGINT NOT NULL,
    raised_at BIGINT NOT NULL
);

CREATE INDEX fdc_alarms_tool ON fdc_alarms (tool, acked);
