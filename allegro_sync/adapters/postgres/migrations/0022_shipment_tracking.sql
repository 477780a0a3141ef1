-- Delivery status back to the ERP (issue 16, item 4): the carrier's tracking of every tracking
-- number on Allegro (GET /order/carriers/{carrierId}/tracking) is read at an interval until
-- it is delivered or returned; each change of status goes to the ERP once.

-- The last status seen (the carrier's code, e.g. IN_TRANSIT, DELIVERED) and when it occurred:
-- a status not newer than this was published already, so a restart publishes nothing again.
ALTER TABLE shipments ADD COLUMN delivery_status text;
ALTER TABLE shipments ADD COLUMN delivery_status_at timestamptz;
-- The next read (NULL: one interval after sent_at), the reads so far, and why tracking ended
-- (NULL: still tracked): delivered, returned, ended (another status the carrier marks terminal),
-- given_up (older than the give-up age), untracked
-- (a carrier Allegro does not track, e.g. OTHER).
ALTER TABLE shipments ADD COLUMN tracking_next_at timestamptz;
ALTER TABLE shipments ADD COLUMN tracking_reads integer NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN tracking_done text
    CHECK (tracking_done IN ('delivered', 'returned', 'ended', 'given_up', 'untracked'));
CREATE INDEX shipments_tracked ON shipments (account_id, carrier_id)
    WHERE status = 'sent' AND tracking_done IS NULL;
CREATE INDEX shipments_delivery_status ON shipments (delivery_status, created_at)
    WHERE delivery_status IS NOT NULL;
-- Tracking numbers on Allegro whose order's status step (SENT) is left: the status writes
-- follow the tracking numbers outside the consumer's batch (handlers/shipments.py).
CREATE INDEX shipments_status_step ON shipments (sent_at)
    WHERE status = 'sent' AND fulfillment_at IS NULL;
