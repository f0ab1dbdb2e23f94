-- The initial schema (SQLite). Migrations are additive: a later change is a new file.
-- Every time is INTEGER microseconds since the Unix epoch, UTC; the store converts to and
-- from aware datetimes at its edge. JSON columns are TEXT holding compact JSON.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    parent_id TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- No foreign key to organizations: the org directory is fed by the platform
-- (PUT /v1/organizations) and may learn of an org after its first endpoint.
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    url TEXT NOT NULL,
    scope TEXT NOT NULL,
    event_types TEXT,                -- JSON array; NULL = every type
    status TEXT NOT NULL,
    disabled_reason TEXT,
    disabled_at INTEGER,
    rate_limit REAL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,          -- JSON object
    created_by_key_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_success_at INTEGER,
    failing_since INTEGER            -- first failure after the last success; NULL when healthy
) STRICT;

CREATE INDEX endpoints_organization_id ON endpoints (organization_id, id);

-- Never plaintext: AES-256-GCM sealed by dispatcher.secretbox, bound to endpoint_id.
-- id orders secrets newest first.
CREATE TABLE endpoint_secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER               -- NULL = active
) STRICT;

CREATE INDEX endpoint_secrets_endpoint_id ON endpoint_secrets (endpoint_id);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL,              -- stored once, shared by every delivery and attempt
    delivery_count INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,         -- NULL unless pending
    lease_owner TEXT,
    lease_expires_at INTEGER,
    last_attempt_at INTEGER,
    last_status_code INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- When claim_due may take the row: its next attempt, or its lease's expiry if later.
    due_at INTEGER GENERATED ALWAYS AS
        (max(next_attempt_at, coalesce(lease_expires_at, next_attempt_at))) STORED,
    UNIQUE (event_id, endpoint_id)
) STRICT;

CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_id ON deliveries (endpoint_id, id);

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    status_code INTEGER,
    failure_kind TEXT,               -- NULL = success
    response_excerpt BLOB NOT NULL,
    detail TEXT NOT NULL
) STRICT;

CREATE INDEX attempts_delivery_id ON attempts (delivery_id, started_at);

-- One row per Kafka record: a replayed partition does not dead-letter a record twice.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    retried_at INTEGER,
    UNIQUE (topic, "partition", "offset")
) STRICT;

CREATE INDEX dead_letters_reason ON dead_letters (reason, id);

-- A delivery's replay history (who, when, why).
CREATE TABLE replays (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;

CREATE INDEX replays_delivery_id ON replays (delivery_id);
