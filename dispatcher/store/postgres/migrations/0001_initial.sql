-- The initial schema (PostgreSQL). Migrations are additive: a later change is a new file.
-- Times are timestamptz; JSON columns are jsonb; payloads and ciphertexts are bytea.
-- Identifiers use the "C" collation: byte order, as in SQLite, so ids sort the same on both
-- backends (time order for our ids, whatever the database's locale) and compare fast.

CREATE TABLE organizations (
    id text COLLATE "C" PRIMARY KEY,
    parent_id text COLLATE "C",
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- No foreign key to organizations: the org directory is fed by the platform
-- (PUT /v1/organizations) and may learn of an org after its first endpoint.
CREATE TABLE endpoints (
    id text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    url text NOT NULL,
    scope text NOT NULL,
    event_types jsonb,               -- array; NULL = every type
    status text NOT NULL,
    disabled_reason text,
    disabled_at timestamptz,
    rate_limit double precision,
    description text NOT NULL,
    metadata jsonb NOT NULL,
    created_by_key_id text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_success_at timestamptz,
    failing_since timestamptz        -- first failure after the last success; NULL when healthy
);

CREATE INDEX endpoints_organization_id ON endpoints (organization_id, id);

-- Never plaintext: AES-256-GCM sealed by dispatcher.secretbox, bound to endpoint_id.
-- id orders secrets newest first.
CREATE TABLE endpoint_secrets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id text COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz           -- NULL = active
);

CREATE INDEX endpoint_secrets_endpoint_id ON endpoint_secrets (endpoint_id);

CREATE TABLE events (
    id text COLLATE "C" PRIMARY KEY,
    type text NOT NULL,
    organization_id text COLLATE "C" NOT NULL,
    created timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    body bytea NOT NULL,             -- stored once, shared by every delivery and attempt
    delivery_count integer NOT NULL DEFAULT 0
);

CREATE INDEX events_received_at ON events (received_at);

-- deliveries and attempts carry no foreign keys: their per-row triggers cost about a third
-- of ingest and a sixth of complete throughput. The store keeps them consistent instead:
-- ingest locks the endpoints and the stored events it inserts deliveries for (and refuses
-- unknown events), complete records attempts only for deliveries it updated, and deleting
-- an endpoint or purging events deletes their deliveries and attempts explicitly.
CREATE TABLE deliveries (
    id text COLLATE "C" PRIMARY KEY,
    event_id text COLLATE "C" NOT NULL,
    endpoint_id text COLLATE "C" NOT NULL,
    status text NOT NULL,
    reason text,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,     -- NULL unless pending
    lease_owner text,
    lease_expires_at timestamptz,
    last_attempt_at timestamptz,
    last_status_code integer,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    -- When claim_due may take the row: its next attempt, or its lease's expiry if later
    -- (GREATEST ignores NULL).
    due_at timestamptz GENERATED ALWAYS AS (GREATEST(next_attempt_at, lease_expires_at)) STORED,
    UNIQUE (event_id, endpoint_id)
);

CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_id ON deliveries (endpoint_id, id);

CREATE TABLE attempts (
    id text COLLATE "C" PRIMARY KEY,
    delivery_id text COLLATE "C" NOT NULL,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    status_code integer,
    failure_kind text,               -- NULL = success
    response_excerpt bytea NOT NULL,
    detail text NOT NULL
);

CREATE INDEX attempts_delivery_id ON attempts (delivery_id, started_at);

-- One row per Kafka record: a replayed partition does not dead-letter a record twice.
CREATE TABLE dead_letters (
    id text COLLATE "C" PRIMARY KEY,
    topic text NOT NULL,
    "partition" integer NOT NULL,
    "offset" bigint NOT NULL,
    key bytea,
    value bytea,
    reason text NOT NULL,
    detail text NOT NULL,
    received_at timestamptz NOT NULL,
    retried_at timestamptz,
    UNIQUE (topic, "partition", "offset")
);

CREATE INDEX dead_letters_reason ON dead_letters (reason, id);

-- A delivery's replay history (who, when, why).
CREATE TABLE replays (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id text COLLATE "C" NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    actor text NOT NULL,
    reason text NOT NULL,
    at timestamptz NOT NULL
);

CREATE INDEX replays_delivery_id ON replays (delivery_id);
