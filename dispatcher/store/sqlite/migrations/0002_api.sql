-- The HTTP API's state (SQLite): API keys, bulk replay jobs, and which job replayed what.

-- Only a hash of each key is stored (dispatcher.keys explains why SHA-256 suffices).
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    organization_id TEXT,            -- NULL = an operator key
    scopes TEXT NOT NULL,            -- JSON array
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX api_keys_organization_id ON api_keys (organization_id, id);

-- A bulk replay. filter_key is the canonical filter: at most one active job per filter,
-- so re-submitting a running replay returns it instead of starting another.
CREATE TABLE replay_jobs (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    filter_key TEXT NOT NULL,
    since INTEGER,
    until INTEGER,
    statuses TEXT NOT NULL,          -- JSON array
    types TEXT,                      -- JSON array; NULL = every type
    status TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;

CREATE UNIQUE INDEX replay_jobs_active_filter ON replay_jobs (filter_key)
    WHERE status IN ('queued', 'running');
CREATE INDEX replay_jobs_active ON replay_jobs (created_at, id)
    WHERE status IN ('queued', 'running');

-- The deliveries a job has still to replay, snapshotted when it was created (so `total`
-- is exact and a restart resumes where it stopped); each row goes once it is replayed.
CREATE TABLE replay_job_items (
    job_id TEXT NOT NULL REFERENCES replay_jobs (id) ON DELETE CASCADE,
    delivery_id TEXT NOT NULL,
    PRIMARY KEY (job_id, delivery_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE replays ADD COLUMN job_id TEXT;
