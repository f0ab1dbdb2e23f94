-- Endpoint health, continued (dispatcher.core.health): the same successes and failures per
-- hour as the five-minute buckets (no latency bins), which the day window reads: 25 rows per
-- writer instead of 289.
CREATE TABLE endpoint_health_hourly (
    endpoint_id TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    writer TEXT NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, bucket_start, writer)
) STRICT, WITHOUT ROWID;

CREATE INDEX endpoint_health_hourly_bucket_start ON endpoint_health_hourly (bucket_start);
