-- The spec release a fab has applied (fab apc / fab fdc synced from the central spec service
-- over HTTP): the whole released set as the fab validated it, and the central log revision it
-- had synced to. Written before the fab acknowledges the release, so a restart while the spec
-- service is down serves with it. Only ever moves to a newer version.
CREATE TABLE spec_applied (
    fab TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    spec_set TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);
