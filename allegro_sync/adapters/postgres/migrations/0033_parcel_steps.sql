-- Parcels sent with Allegro, their steps made safe to repeat (issue 16 review).

-- When the create command was last about to go out (set just before the POST, NULL: never): an
-- attempt that finds it set reads the command on Allegro first and posts only when Allegro does
-- not know it, so a lost answer or a crash after the POST never leaves the parcel stuck.
ALTER TABLE parcels ADD COLUMN sent_at timestamptz;
-- Every package's waybill, in the order of the request's packages (``waybill`` is the first).
ALTER TABLE parcels ADD COLUMN waybills text[];
UPDATE parcels SET waybills = ARRAY[waybill] WHERE waybill IS NOT NULL;
