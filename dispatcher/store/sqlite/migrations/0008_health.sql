-- Endpoint health (dispatcher.core.health). Each batch of attempt results adds, in the same
-- transaction, to five-minute buckets per endpoint and writer (the replica whose lease the
-- attempts ran under, so replicas never contend for a row): successes, failures, and the
-- attempts' durations counted in 18 log-spaced latency bins (l00: under 1 ms, lNN: from
-- 2^(NN-1) ms, l17: 65.5 s and more). A health read sums at most a day of them.
CREATE TABLE endpoint_health (
    endpoint_id TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    writer TEXT NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    l00 INTEGER NOT NULL DEFAULT 0,
    l01 INTEGER NOT NULL DEFAULT 0,
    l02 INTEGER NOT NULL DEFAULT 0,
    l03 INTEGER NOT NULL DEFAULT 0,
    l04 INTEGER NOT NULL DEFAULT 0,
    l05 INTEGER NOT NULL DEFAULT 0,
    l06 INTEGER NOT NULL DEFAULT 0,
    l07 INTEGER NOT NULL DEFAULT 0,
    l08 INTEGER NOT NULL DEFAULT 0,
    l09 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, bucket_start, writer)
) STRICT, WITHOUT ROWID;

CREATE INDEX endpoint_health_bucket_start ON endpoint_health (bucket_start);

-- The run of failures since the last success, and the breaker as last reported by any
-- replica (each replica keeps its own in memory; it writes every transition here, the
-- latest wins, and a success recorded after it reports the breaker closed).
ALTER TABLE endpoints ADD COLUMN last_failure_at INTEGER;
ALTER TABLE endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN breaker TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE endpoints ADD COLUMN breaker_changed_at INTEGER;
ALTER TABLE endpoints ADD COLUMN breaker_probe_at INTEGER;

-- An endpoint's pending and failed deliveries are counted by these (index-only).
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_failed ON deliveries (endpoint_id) WHERE status = 'failed';
