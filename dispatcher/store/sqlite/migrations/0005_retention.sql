-- Retention reaches dead letters and finished replay jobs too (WEBHOOKS_RETENTION): the
-- purge finds them by age.
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX replay_jobs_finished_at ON replay_jobs (finished_at) WHERE finished_at IS NOT NULL;
