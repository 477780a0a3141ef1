-- Bounded retries of the shipping steps (parcels sent with Allegro and the SENT status that
-- follows a tracking number): a step that keeps failing, or runs too long, is given up instead
-- of being tried forever.

-- Parcels: the failures of the current step (create or cancel) that a retry might have cured,
-- reset when the step moves on, and when the step began (the create: the request; a cancel:
-- shipment.cancel). ``attempts`` keeps counting every claim, status reads included.
ALTER TABLE parcels ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE parcels ADD COLUMN step_started_at timestamptz NOT NULL DEFAULT now();
UPDATE parcels SET step_started_at = created_at;

-- Tracking numbers: the attempts of the SENT step so far and when the first began; a step
-- given up says why (its fulfillment_at is set: it is not tried again).
ALTER TABLE shipments ADD COLUMN status_step_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN status_step_since timestamptz;
ALTER TABLE shipments ADD COLUMN status_step_error text;

-- GET /shipments lists parcels that carry no tracking number yet (requested, being made,
-- failed) beside the tracking numbers: it looks up a parcel's row by Allegro's shipment id.
CREATE INDEX shipments_allegro_shipment ON shipments (allegro_shipment_id)
    WHERE allegro_shipment_id IS NOT NULL;
CREATE INDEX parcels_created ON parcels (created_at, id);
