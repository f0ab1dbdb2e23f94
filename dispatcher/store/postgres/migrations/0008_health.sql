-- Endpoint health (dispatcher.core.health). Each batch of attempt results adds, in the same
-- transaction, to five-minute buckets per endpoint and writer (the replica whose lease the
-- attempts ran under, so replicas never contend for a row): successes, failures, and the
-- attempts' durations counted in 18 log-spaced latency bins (l00: under 1 ms, lNN: from
-- 2^(NN-1) ms, l17: 65.5 s and more). A health read sums at most a day of them.
CREATE TABLE endpoint_health (
    endpoint_id text COLLATE "C" NOT NULL,
    bucket_start timestamptz NOT NULL,
    writer text COLLATE "C" NOT NULL,
    succeeded integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    l00 integer NOT NULL DEFAULT 0,
    l01 integer NOT NULL DEFAULT 0,
    l02 integer NOT NULL DEFAULT 0,
    l03 integer NOT NULL DEFAULT 0,
    l04 integer NOT NULL DEFAULT 0,
    l05 integer NOT NULL DEFAULT 0,
    l06 integer NOT NULL DEFAULT 0,
    l07 integer NOT NULL DEFAULT 0,
    l08 integer NOT NULL DEFAULT 0,
    l09 integer NOT NULL DEFAULT 0,
    l10 integer NOT NULL DEFAULT 0,
    l11 integer NOT NULL DEFAULT 0,
    l12 integer NOT NULL DEFAULT 0,
    l13 integer NOT NULL DEFAULT 0,
    l14 integer NOT NULL DEFAULT 0,
    l15 integer NOT NULL DEFAULT 0,
    l16 integer NOT NULL DEFAULT 0,
    l17 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, bucket_start, writer)
);

CREATE INDEX endpoint_health_bucket_start ON endpoint_health (bucket_start);

-- The run of failures since the last success, and the breaker as last reported by any
-- replica (each replica keeps its own in memory; it writes every transition here, the
-- latest wins, and a success recorded after it reports the breaker closed).
ALTER TABLE endpoints ADD COLUMN last_failure_at timestamptz;
ALTER TABLE endpoints ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN breaker text NOT NULL DEFAULT 'closed';
ALTER TABLE endpoints ADD COLUMN breaker_changed_at timestamptz;
ALTER TABLE endpoints ADD COLUMN breaker_probe_at timestamptz;

-- An endpoint's pending and failed deliveries are counted by these (index-only).
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_failed ON deliveries (endpoint_id) WHERE status = 'failed';
