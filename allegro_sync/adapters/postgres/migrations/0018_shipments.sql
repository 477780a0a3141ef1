-- Tracking numbers to Allegro (issue 16, item 1): the ERP's shipment.added becomes
-- POST /order/checkout-forms/{id}/shipments.

-- With a tracking number on Allegro, the order's fulfillment status becomes SENT (unless it is
-- already SENT, PICKED_UP, CANCELLED, SUSPENDED or RETURNED).
ALTER TABLE accounts ADD COLUMN mark_sent_on_tracking boolean NOT NULL DEFAULT true;

-- One row per tracking number and order: the same waybill twice on one order is one shipment
-- (a duplicate confuses Allegro's on-time figures). The row is written before the POST and
-- ``requested_at`` set just before it, so an attempt after a crash between the two reads the
-- order's shipments on Allegro before posting again. ``claimed_until`` is a lease: two
-- messages with the same waybill never post at once.
CREATE TABLE shipments (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checkout_form_id    uuid        NOT NULL REFERENCES orders (checkout_form_id) ON DELETE CASCADE,
    account_id          bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    waybill             text        NOT NULL,
    carrier_id          text        NOT NULL,
    carrier_name        text,
    -- [{line_item_id, quantity}], NULL: the whole order
    line_items          jsonb,
    status              text        NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'sent', 'refused')),
    allegro_shipment_id text,
    error               text,
    claimed_until       timestamptz,
    requested_at        timestamptz,
    sent_at             timestamptz,
    -- the order's fulfillment status was dealt with (set to SENT, already further, setting off)
    fulfillment_at      timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (checkout_form_id, waybill)
);
CREATE INDEX shipments_account_created ON shipments (account_id, created_at);
