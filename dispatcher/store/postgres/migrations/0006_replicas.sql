-- Who shares this store now: each replica records itself every few seconds, so each can
-- enforce its share (1/N) of the limits that must hold across replicas (an endpoint's
-- rateLimit and in-flight cap, WEBHOOKS_REPLAY_RATE, WEBHOOKS_API_RATE_LIMIT).
CREATE TABLE replicas (
    instance_id text COLLATE "C" PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
