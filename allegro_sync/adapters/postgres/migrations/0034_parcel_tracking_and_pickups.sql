-- A cancelled parcel's tracking numbers are no longer tracked (issue 16 review).
ALTER TABLE shipments DROP CONSTRAINT shipments_tracking_done_check;
ALTER TABLE shipments ADD CONSTRAINT shipments_tracking_done_check
    CHECK (tracking_done IN ('delivered', 'returned', 'ended', 'given_up', 'untracked',
                             'cancelled'));

-- Courier pickups ordered from the admin API and the CLI: the command id is stored before the
-- command is sent, so a pickup still in progress when the caller stops waiting can be resumed
-- by its command id instead of ordering a second courier.
CREATE TABLE parcel_pickups (
    command_id   uuid        PRIMARY KEY,
    account_id   bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    shipment_ids text[]      NOT NULL,
    -- the slot taken: {date, minTime, maxTime}
    slot         jsonb       NOT NULL,
    pickup_id    text,
    carrier_pickup_id text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz
);
