-- The order journal's echo of a fulfillment status the daemon itself wrote (issue 16, speed):
-- before its revision-checked PUT the daemon notes the status and the revision it wrote over;
-- the poller takes the next FULFILLMENT_STATUS_CHANGED event of that form (if the stored form
-- is still at that revision) as the echo and stores the status and the event's revision
-- without reading the form again. Any later event of the form is read as before.
ALTER TABLE orders ADD COLUMN own_status text;
ALTER TABLE orders ADD COLUMN own_status_over text;
ALTER TABLE orders ADD COLUMN own_status_at timestamptz;
