-- Orders: remember up to which orders-from date the checkout-form backfill has run.
ALTER TABLE accounts ADD COLUMN orders_backfilled_from timestamptz;
CREATE INDEX order_lines_offer ON order_lines (offer_id);
