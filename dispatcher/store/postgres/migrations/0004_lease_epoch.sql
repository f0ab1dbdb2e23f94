-- Fencing (dispatcher.core.models.Lease): every claim of a delivery takes the next epoch, and
-- a result, hand-back or suppression is applied only while the row still carries the
-- claimer's owner and epoch. 0 for a row never leased; 1 for one leased as it is ingested.
ALTER TABLE deliveries ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;
