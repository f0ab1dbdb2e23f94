-- The partner portal: the origins an organization lets frame it, and portal sessions.

-- A JSON array of `https://host[:port]` origins (CSP frame-ancestors); [] = none.
ALTER TABLE organizations ADD COLUMN portal_origins TEXT NOT NULL DEFAULT '[]';

-- A session minted by an org:admin key. Only SHA-256 digests of its secrets are kept: the
-- one-time link token (token_hash) and, once the link is exchanged, the cookie secret
-- (cookie_hash). Expired rows are purged by housekeeping.
CREATE TABLE portal_sessions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    key_id TEXT NOT NULL,            -- the minting key: revoking it ends the session
    scopes TEXT NOT NULL,            -- JSON array
    token_hash TEXT NOT NULL UNIQUE,
    cookie_hash TEXT UNIQUE,         -- NULL until the link is exchanged
    created_at INTEGER NOT NULL,
    link_expires_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    exchanged_at INTEGER
) STRICT;

CREATE INDEX portal_sessions_expires_at ON portal_sessions (expires_at);
