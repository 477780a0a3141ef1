-- Allegro's limits shared by every replica (adapters/allegro/limits.py): one token bucket per
-- key ('client', 'changes:<account>:<kind>:hour|minute'), refilled by time on each lease; its
-- capacity and rate come with each lease (the daemon's configuration), the row keeps the level.
-- blocked_until / pause: the 429 pause every replica keeps to.
CREATE TABLE rate_buckets (
    key           text PRIMARY KEY,
    tokens        double precision NOT NULL,
    stamp         timestamptz NOT NULL DEFAULT clock_timestamp(),
    blocked_until timestamptz NOT NULL DEFAULT '-infinity',
    pause         double precision NOT NULL DEFAULT 0 CHECK (pause >= 0)
);
