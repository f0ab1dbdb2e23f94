-- Why a pending delivery that is not in flight waits (dispatcher.core.models.WaitingReason):
-- retry_scheduled, breaker_open, rate_limited, endpoint_busy, replay_queued, shutdown,
-- attempt_error. NULL while it is in flight or once it is final.
ALTER TABLE deliveries ADD COLUMN waiting_reason TEXT;
