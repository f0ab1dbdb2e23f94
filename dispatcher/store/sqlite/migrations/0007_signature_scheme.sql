-- How an endpoint's attempts are signed: v1 (HMAC-SHA256 with a whsec_ secret) or v1a
-- (ed25519: the whsk_ private key sealed in endpoint_secrets like a secret, the whpk_ public
-- key here, in the clear, since it is public and shown on every read).
ALTER TABLE endpoints ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'v1';
ALTER TABLE endpoints ADD COLUMN public_key TEXT;
