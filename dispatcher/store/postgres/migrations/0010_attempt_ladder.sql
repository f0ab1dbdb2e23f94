-- Attempts are numbered across replays (1, 2, 3 … for the life of a delivery) and
-- `attempts` counts every one; a replay restarts the retry ladder by recording how many
-- attempts came before it. The ladder position of the next attempt is then
-- attempts - ladder_start + 1.
ALTER TABLE deliveries ADD COLUMN ladder_start integer NOT NULL DEFAULT 0;
