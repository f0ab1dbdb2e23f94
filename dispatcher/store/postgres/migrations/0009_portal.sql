-- The partner portal: the origins an organization lets frame it, and portal sessions.

-- `https://host[:port]` origins (CSP frame-ancestors); [] = none.
ALTER TABLE organizations ADD COLUMN portal_origins jsonb NOT NULL DEFAULT '[]';

-- A session minted by an org:admin key. Only SHA-256 digests of its secrets are kept: the
-- one-time link token (token_hash) and, once the link is exchanged, the cookie secret
-- (cookie_hash). Expired rows are purged by housekeeping.
CREATE TABLE portal_sessions (
    id text COLLATE "C" PRIMARY KEY,
    organization_id text COLLATE "C" NOT NULL,
    key_id text COLLATE "C" NOT NULL,   -- the minting key: revoking it ends the session
    scopes jsonb NOT NULL,              -- array
    token_hash text COLLATE "C" NOT NULL UNIQUE,
    cookie_hash text COLLATE "C" UNIQUE, -- NULL until the link is exchanged
    created_at timestamptz NOT NULL,
    link_expires_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    exchanged_at timestamptz
);

CREATE INDEX portal_sessions_expires_at ON portal_sessions (expires_at);
