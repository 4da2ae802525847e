-- One schema for SQLite and PostgreSQL: text (JSON documents of the domain's serde values),
-- BIGINT for versions and millisecond timestamps. The JSON is written with float_roundtrip, so
-- folding the stored transitions reproduces the stored thread exactly.

-- Versioned controller configurations per (product, technology, layer): never edited in place.
CREATE TABLE apc_configs (
    scope TEXT NOT NULL,
    version BIGINT NOT NULL,
    config TEXT NOT NULL,
    sr_min TEXT NOT NULL,
    sr_max TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, version)
);

-- The current state of each thread (a snapshot of the fold of its transitions). Writers update
-- it only at the version they read (optimistic concurrency), so replicas can share threads.
CREATE TABLE apc_threads (
    thread_key TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every state transition, before and after: the history the thread is the fold of.
CREATE TABLE apc_transitions (
    thread_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    transition TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (thread_key, version)
);

-- Run records, found by run id (metrology and applied-SR reports name the run only).
CREATE TABLE apc_runs (
    run TEXT PRIMARY KEY,
    thread_key TEXT NOT NULL,
    record TEXT NOT NULL,
    at BIGINT NOT NULL
);

-- Metrology as received, with what became of it.
CREATE TABLE apc_measurements (
    id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    measurement TEXT NOT NULL,
    disposition TEXT,
    at BIGINT NOT NULL
);

-- The stored response of each write, by (caller, idempotency key): written in the same
-- transaction as the write's effect, so a retry gets exactly the original answer.
CREATE TABLE idempotency (
    principal TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (principal, idem_key)
);
