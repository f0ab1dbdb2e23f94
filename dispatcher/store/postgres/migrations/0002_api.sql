-- The HTTP API's state (PostgreSQL): API keys, bulk replay jobs, and which job replayed what.

-- Only a hash of each key is stored (dispatcher.keys explains why SHA-256 suffices).
CREATE TABLE api_keys (
    id text COLLATE "C" PRIMARY KEY,
    key_hash text COLLATE "C" NOT NULL UNIQUE,
    organization_id text COLLATE "C",   -- NULL = an operator key
    scopes jsonb NOT NULL,              -- array
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX api_keys_organization_id ON api_keys (organization_id, id);

-- A bulk replay. filter_key is the canonical filter: at most one active job per filter,
-- so re-submitting a running replay returns it instead of starting another.
CREATE TABLE replay_jobs (
    id text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    endpoint_id text COLLATE "C" NOT NULL,
    filter_key text NOT NULL,
    since timestamptz,
    until timestamptz,
    statuses jsonb NOT NULL,            -- array
    types jsonb,                        -- array; NULL = every type
    status text NOT NULL,
    total integer NOT NULL DEFAULT 0,
    done integer NOT NULL DEFAULT 0,
    actor text NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    finished_at timestamptz
);

CREATE UNIQUE INDEX replay_jobs_active_filter ON replay_jobs (filter_key)
    WHERE status IN ('queued', 'running');
CREATE INDEX replay_jobs_active ON replay_jobs (created_at, id)
    WHERE status IN ('queued', 'running');

-- The deliveries a job has still to replay, snapshotted when it was created (so `total`
-- is exact and a restart resumes where it stopped); each row goes once it is replayed.
CREATE TABLE replay_job_items (
    job_id text COLLATE "C" NOT NULL REFERENCES replay_jobs (id) ON DELETE CASCADE,
    delivery_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (job_id, delivery_id)
);

ALTER TABLE replays ADD COLUMN job_id text;
